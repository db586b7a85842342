#!/usr/bin/env bash
# The evaluation table of the shipped model: every distillation variant, the shipped one over
# two seeds (more seeds: add lines), then one evaluation of all of them (docs/evaluation.json and
# .md, rwmfd heatmaps). Run from training/: bash scripts/ablation.sh [runs folder]
# (about 45 min on 2 CPU cores)
set -euo pipefail
runs=${1:-runs}
train() { /usr/bin/python3 -m maskface_train.distill --out "$runs/$1" "${@:2}"; }
train cal-not_mask-s0 --gating not_mask --seed 0
train cal-face-s0 --gating face --seed 0
train plain-masked-distillation-s0 --use-mfsa false --lambda-region 0 --seed 0
train attention-no-region-loss-s0 --gating not_mask --lambda-region 0 --detach-attention false --seed 0
train cal-not_mask-s1 --gating not_mask --seed 1
/usr/bin/python3 -m maskface_train.evaluate "$runs"/cal-* "$runs"/attention-* "$runs"/plain-* \
  --json docs/evaluation.json --heatmaps "$runs/cal-not_mask-s0" --sheet docs/rwmfd_heatmaps.png
/usr/bin/python3 scripts/evaluation_table.py docs/evaluation.json > docs/evaluation.md
