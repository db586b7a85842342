"""Markdown tables from evaluate.py's JSON: methods grouped over seeds (mean, and min-max).

Usage: /usr/bin/python3 scripts/evaluation_table.py docs/evaluation.json > docs/evaluation.md
"""
from __future__ import annotations

import json
import re
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np

VERIFY = [("auc", "AUC"), ("eer", "EER"), ("tar@1e-2", "TAR@FAR=1e-2"), ("tar@1e-3", "TAR@FAR=1e-3"),
          ("rank1", "rank-1")]
PER_SET = [("auc_lfw", "LFW-100"), ("auc_orl", "ORL"), ("auc_deepface", "deepface"), ("auc_bbt", "BBT")]
REGIONS = [("iou_face", "IoU face"), ("iou_mask", "IoU mask"), ("iou_background", "IoU background"),
           ("mask_probability_synthetic", "P(mask) synthetic"), ("mask_probability_clean", "P(mask) clean"),
           ("mask_probability_rwmfd", "P(mask) real masked"), ("rwmfd_above_half", "real masked > 0.5"),
           ("clean_above_half", "clean > 0.5")]


def group(rows: list[dict]) -> "OrderedDict[str, list[dict]]":
    groups: OrderedDict[str, list[dict]] = OrderedDict()
    for row in rows:
        name = re.sub(r"-s\d+$", "", Path(row["method"].rstrip("/")).name)
        groups.setdefault(name, []).append(row)
    return groups


def cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{np.mean(values):.4f} ({min(values):.4f}-{max(values):.4f})"


def table(groups, section: str, columns) -> str:
    lines = ["| method | seeds | " + " | ".join(title for _, title in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for name, rows in groups.items():
        if not all(section in r for r in rows):
            continue
        values = [cell([r[section][key] for r in rows]) for key, _ in columns]
        lines.append(f"| {name} | {len(rows)} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def main() -> None:
    data = json.loads(Path(sys.argv[1]).read_text())
    groups = group(data["rows"])
    print(f"Held-out faces: {data['faces']} (LFW-100, ORL, deepface, BBT); {data['pairs']} pairs, "
          f"{data['genuine']} genuine; {data['dropped_lfw_pairs']} LFW pairs dropped (no face found).")
    print("Cells: mean over seeds, (min-max) when there are several.\n")
    print("### Masked probe vs unmasked gallery (synthetic masks)\n")
    print(table(groups, "masked", VERIFY) + "\n")
    print("### Unmasked vs unmasked\n")
    print(table(groups, "unmasked", VERIFY) + "\n")
    print("### AUC per set, masked probe vs unmasked gallery\n")
    print(table(groups, "masked", PER_SET) + "\n")
    print("### Region maps (finest module, 28x28)\n")
    print(table(groups, "regions", REGIONS))


if __name__ == "__main__":
    main()
