"""Evaluation on held-out labelled faces: masked probe vs unmasked gallery, and unmasked vs unmasked.

Held out: LFW-100 (its 200 pairs), ORL, the deepface test set and the faceapi BBT stills, none of
which the distillation sees (it trains on UTKFace and the CelebA crops). Probes get a synthetic
mask from masks.render_mask with a fixed seed per image, so every method sees the same masked
images. Pairs: LFW's own list; every pair of images within each of the other sets (the first
image of a pair is the probe). Scores of all sets are pooled for AUC, EER and TAR at FAR 1e-2 and
1e-3. Rank-1: a gallery with the first clean image of every identity of all sets (161 identities),
every other image as a probe.

Methods compared in one table:
  fr_feature           the pretrained network as it is
  fr_feature, blanked  the same with rows y >= BLANK_FROM of both faces set to the mean: a
                       training-free baseline that ignores the lower face everywhere
  runs                 students of distill.py (each run folder given on the command line)

Region quality: per-class IoU of the finest map (28x28 argmax) against the synthetic labels of
the masked probes, and the mean mask probability (runtime definition: mean P[mask] over the
lower part of the face prior) on real masked photos (rwmfd_part1) and on clean faces.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from . import facedata
from .distill import load_student, to_input
from .import_onnx import load_fr_feature
from .losses import resize_labels
from .masks import FACE_PRIOR, render_mask
from .mfsa import BACKGROUND, FACE, MASK

EVAL_SETS = ("lfw", "orl", "deepface", "bbt")
MASK_SEED = 20261128
BLANK_FROM = 58   # template rows from here down: below the eyes (51.6), above the nose tip (71.7)
NOSE_LINE = 72    # the runtime's lower-face region starts at the nose tip line


@dataclass
class EvalData:
    clean: np.ndarray          # (N,112,112,3)
    masked: np.ndarray         # same faces, each with one synthetic mask
    regions: np.ndarray        # (N,112,112) labels of the masked images
    labels: np.ndarray         # global identity index
    set_index: np.ndarray      # which EVAL_SETS entry
    pairs: np.ndarray          # (P, 3): probe index, gallery index, same identity (1/0)
    dropped_pairs: int         # LFW pairs with an image in which no face was found


def load_eval_data() -> EvalData:
    clean, points, labels, set_index, pairs = [], [], [], [], []
    offset, label_offset, dropped = 0, 0, 0
    for s, name in enumerate(EVAL_SETS):
        aligned = facedata.load_set(name)
        local = aligned.labels()
        clean.append(aligned.crops)
        points.append(aligned.landmarks5)
        labels.append(local + label_offset)
        set_index.append(np.full(len(local), s))
        if name == "lfw":
            position = {f: i for i, f in enumerate(aligned.files)}
            with open(facedata.DATA_DIR / "lfw_aligned_100pair" / "pairs.txt") as f:
                for line in f:
                    if line.startswith("#") or not line.strip():
                        continue
                    a, b, same = line.split()
                    if a in position and b in position:
                        pairs.append((position[a] + offset, position[b] + offset, int(same)))
                    else:
                        dropped += 1
        else:
            i, j = np.triu_indices(len(local), k=1)
            pairs.extend(zip(i + offset, j + offset, (local[i] == local[j]).astype(int)))
        offset += len(local)
        label_offset += local.max() + 1
    clean = np.concatenate(clean)
    points = np.concatenate(points)
    masked = np.empty_like(clean)
    regions = np.empty(clean.shape[:3], np.uint8)
    for i in range(len(clean)):
        masked[i], regions[i] = render_mask(clean[i], np.random.default_rng([MASK_SEED, i]), landmarks5=points[i])
    return EvalData(clean, masked, regions, np.concatenate(labels), np.concatenate(set_index),
                    np.array(pairs, np.int64), dropped)


# --- metrics -------------------------------------------------------------------------------------

def auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Probability that a genuine score beats an impostor score (ties count half)."""
    scores = np.concatenate([genuine, impostor])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(average, counts)
    return float((ranks[:len(genuine)].sum() - len(genuine) * (len(genuine) + 1) / 2)
                 / (len(genuine) * len(impostor)))


def eer(genuine: np.ndarray, impostor: np.ndarray) -> float:
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    frr = np.searchsorted(np.sort(genuine), thresholds, side="left") / len(genuine)
    far = 1.0 - np.searchsorted(np.sort(impostor), thresholds, side="left") / len(impostor)
    k = int(np.argmin(np.abs(far - frr)))
    return float((far[k] + frr[k]) / 2)


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> float:
    """Share of genuine scores above the threshold that lets at most `far` of impostors through."""
    ranked = np.sort(impostor)[::-1]
    allowed = int(np.floor(far * len(ranked)))
    threshold = ranked[allowed] if allowed < len(ranked) else -np.inf
    return float((genuine > threshold).mean())


def rank1(probe: np.ndarray, gallery: np.ndarray, labels: np.ndarray) -> float:
    """Gallery: the first image of each identity (clean); probes: every other image."""
    first = {}
    for i, label in enumerate(labels):
        first.setdefault(int(label), i)
    gallery_rows = np.array(sorted(first.values()))
    probes = np.setdiff1d(np.arange(len(labels)), gallery_rows)
    scores = probe[probes] @ gallery[gallery_rows].T
    return float((labels[gallery_rows][scores.argmax(1)] == labels[probes]).mean())


def verification(probe: np.ndarray, gallery: np.ndarray, data: EvalData, labels: np.ndarray) -> dict:
    p, g, same = data.pairs.T
    scores = np.einsum("ij,ij->i", probe[p], gallery[g])
    genuine, impostor = scores[same == 1], scores[same == 0]
    result = {
        "auc": auc(genuine, impostor), "eer": eer(genuine, impostor),
        "tar@1e-2": tar_at_far(genuine, impostor, 1e-2), "tar@1e-3": tar_at_far(genuine, impostor, 1e-3),
        "rank1": rank1(probe, gallery, labels),
    }
    for s, name in enumerate(EVAL_SETS):
        in_set = data.set_index[p] == s
        if not in_set.any():
            continue
        result[f"auc_{name}"] = auc(scores[in_set & (same == 1)], scores[in_set & (same == 0)])
    return result


# --- methods -------------------------------------------------------------------------------------

def blanked(images: np.ndarray) -> np.ndarray:
    out = images.copy()
    out[:, BLANK_FROM:] = 127  # the network's mean: zero after normalisation
    return out


def lower_face_cells(size: int = 28) -> np.ndarray:
    """Cells of the region map whose centre is inside the face prior and below the nose line."""
    cell = 112 / size
    centres = (np.arange(size) + 0.5) * cell - 0.5
    y, x = np.meshgrid(centres, centres, indexing="ij")
    inside = ((x - FACE_PRIOR.centre_x) / FACE_PRIOR.semi_axis_x) ** 2 + \
             ((y - FACE_PRIOR.centre_y) / FACE_PRIOR.semi_axis_y) ** 2 <= 1.0
    return inside & (y >= NOSE_LINE)


@torch.no_grad()
def region_probabilities(model, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """(N,3,28,28) softmax of the finest MFSA module."""
    model.eval()
    out = []
    for start in range(0, len(images), batch):
        _, logits = model(to_input(images[start:start + batch]))
        out.append(torch.softmax(logits[0], dim=1).numpy())
    return np.concatenate(out)


def region_iou(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    predicted = probabilities.argmax(1)
    target = resize_labels(torch.from_numpy(labels.astype(np.int64)), predicted.shape[-2:]).numpy()
    result = {}
    for name, k in (("face", FACE), ("mask", MASK), ("background", BACKGROUND)):
        union = ((predicted == k) | (target == k)).sum()
        result[f"iou_{name}"] = float(((predicted == k) & (target == k)).sum() / max(union, 1))
    return result


def mask_probability(probabilities: np.ndarray) -> np.ndarray:
    return probabilities[:, MASK][:, lower_face_cells(probabilities.shape[-1])].mean(1)


@torch.no_grad()
def run_model(model, images: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray | None]:
    """(L2-normalised embeddings, finest region probabilities or None) in one pass."""
    model.eval()
    embeddings, probabilities = [], []
    for start in range(0, len(images), batch):
        result = model(to_input(images[start:start + batch]))
        embedding, logits = result if isinstance(result, tuple) else (result, [])
        embeddings.append(torch.nn.functional.normalize(embedding, dim=1).numpy())
        if logits:
            probabilities.append(torch.softmax(logits[0], dim=1).numpy())
    return np.concatenate(embeddings), (np.concatenate(probabilities) if probabilities else None)


def evaluate_model(name: str, model, data: EvalData, *, preprocess=lambda x: x, real_masked=None) -> dict:
    clean, probs_clean = run_model(model, preprocess(data.clean))
    masked, probs_masked = run_model(model, preprocess(data.masked))
    row = {"method": name,
           "masked": verification(masked, clean, data, data.labels),
           "unmasked": verification(clean, clean, data, data.labels)}
    if probs_masked is not None:
        row["regions"] = region_iou(probs_masked, data.regions)
        row["regions"]["mask_probability_synthetic"] = float(mask_probability(probs_masked).mean())
        row["regions"]["mask_probability_clean"] = float(mask_probability(probs_clean).mean())
        row["regions"]["clean_above_half"] = float((mask_probability(probs_clean) > 0.5).mean())
        if real_masked is not None:
            real = mask_probability(run_model(model, real_masked)[1])
            row["regions"]["mask_probability_rwmfd"] = float(real.mean())
            row["regions"]["rwmfd_above_half"] = float((real > 0.5).mean())
    return row


def heatmap_sheet(model, images: np.ndarray, path: str | Path, count: int = 24, columns: int = 8) -> None:
    """Real photos beside P[mask] (red) and P[face] (green) of the finest module, upsampled."""
    picks = np.linspace(0, len(images) - 1, count).astype(int)
    probs = region_probabilities(model, images[picks])
    tiles = []
    for image, p in zip(images[picks], probs):
        up = lambda m: cv2.resize(m, (112, 112), interpolation=cv2.INTER_LINEAR)  # noqa: E731
        overlay = image.astype(np.float32) * 0.45
        overlay[..., 0] += 140 * up(p[MASK])
        overlay[..., 1] += 140 * up(p[FACE])
        tiles.append(np.concatenate([image, np.clip(overlay, 0, 255).astype(np.uint8)], axis=0))
    rows = [np.concatenate(tiles[r:r + columns], axis=1) for r in range(0, len(tiles), columns)]
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="distill.py run folders")
    parser.add_argument("--json", required=True, help="write all results here")
    parser.add_argument("--heatmaps", help="run folder whose model draws the rwmfd heatmap sheet")
    parser.add_argument("--sheet", default="docs/rwmfd_heatmaps.png")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # see distill.train
    data = load_eval_data()
    real = facedata.load_set("rwmfd").crops
    print(f"eval: {len(data.clean)} faces, {len(data.pairs)} pairs "
          f"({int(data.pairs[:, 2].sum())} genuine), {data.dropped_pairs} LFW pairs dropped")
    teacher = load_fr_feature().eval()
    rows = [evaluate_model("fr_feature", teacher, data),
            evaluate_model("fr_feature, lower face blanked", teacher, data, preprocess=blanked)]
    for run in args.runs:
        config = json.loads((Path(run) / "config.json").read_text())
        rows.append(evaluate_model(run, load_student(run), data, real_masked=real) | {"config": config})
        print(json.dumps(rows[-1]["masked"]), flush=True)
    Path(args.json).write_text(json.dumps({"faces": len(data.clean), "pairs": len(data.pairs),
                                           "genuine": int(data.pairs[:, 2].sum()),
                                           "dropped_lfw_pairs": data.dropped_pairs, "rows": rows}, indent=1))
    if args.heatmaps:
        heatmap_sheet(load_student(args.heatmaps), real, args.sheet)


if __name__ == "__main__":
    main()
