"""Real masked photos with identities (rmfrd_real_masks), aligned by maskface's own photo pipeline.

The crops come from `scripts/runtime_align.mjs`: the runtime's FaceDetector with its defaults
(BlazeFace-256, 68 landmarks averaged with the mirror image), the largest face of each photo,
warped twice: on five points, and on the eyes and nose tip only (what `embedFaces` does for a
masked face, whose mouth corners the landmark network can only guess). Training on these crops
means training on what the model is given at run time.

The split is by identity (split.csv): `load_rmfrd("train")` never returns a 'val' identity, and
nothing in training asks for 'val'.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import facedata
from .import_onnx import REPO_ROOT

FOLDER = "rmfrd_real_masks"
ALIGNER = REPO_ROOT / "training" / "scripts" / "runtime_align.mjs"
SPLITS = ("train", "val")


@dataclass
class RealMaskedSet:
    """Photos of one split in which a face was found."""
    five_point: np.ndarray    # (N,112,112,3) uint8 RGB
    eyes_nose: np.ndarray     # (N,112,112,3) the same faces aligned on the eyes and nose tip
    identities: list[str]
    masked: np.ndarray        # (N,) bool, from the file name
    files: list[str]          # relative to the set's folder
    failures: list[str]       # no face found: not in the set

    def labels(self) -> np.ndarray:
        names = sorted(set(self.identities))
        index = {n: k for k, n in enumerate(names)}
        return np.array([index[i] for i in self.identities], np.int64)


def split_identities(split: str, root: Path | None = None) -> list[str]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    with open((root or facedata.DATA_DIR) / FOLDER / "split.csv", newline="") as f:
        return sorted(row["identity"] for row in csv.DictReader(f) if row["split"] == split)


def _photos(split: str, root: Path) -> list[str]:
    files = []
    for identity in split_identities(split, root):
        folder = root / FOLDER / identity
        files.extend(f"{identity}/{p.name}" for p in sorted(folder.iterdir())
                     if p.suffix.lower() in facedata.IMAGE_SUFFIXES)
    return files


def _align_with_runtime(paths: list[Path], out: Path) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        listing.write("".join(f"{p}\n" for p in paths))
    try:
        started = time.monotonic()
        result = subprocess.run(["node", str(ALIGNER), listing.name, str(out)], cwd=REPO_ROOT,
                                stderr=sys.stderr)
        if result.returncode != 0:
            raise RuntimeError(f"{ALIGNER.name} failed (exit {result.returncode}); is the addon built "
                               "(`npm install` in the repository)?")
        print(f"runtime alignment: {len(paths)} photos in {time.monotonic() - started:.0f} s", file=sys.stderr)
    finally:
        os.unlink(listing.name)


def load_rmfrd(split: str, *, root: Path | None = None) -> RealMaskedSet:
    """Aligned crops of one split, from the cache or computed now (about 1 minute per 1000 photos)."""
    root = root or facedata.DATA_DIR
    files = _photos(split, root)
    digest = hashlib.sha256(f"runtime-v1\0{split}".encode())
    for name in files:
        digest.update(f"{name}\0{(root / FOLDER / name).stat().st_size}\0".encode())
    base = facedata.cache_dir() / f"rmfrd-{split}-{digest.hexdigest()[:16]}"
    if not Path(f"{base}.json").exists():
        base.parent.mkdir(parents=True, exist_ok=True)
        _align_with_runtime([root / FOLDER / f for f in files], base)
    meta = json.loads(Path(f"{base}.json").read_text())
    crops = np.fromfile(f"{base}.u8", np.uint8).reshape(len(files), 2, 112, 112, 3)
    found = np.array(meta["found"], bool)
    kept = [f for f, ok in zip(files, found) if ok]
    return RealMaskedSet(
        five_point=crops[found, 0], eyes_nose=crops[found, 1],
        identities=[f.split("/")[0] for f in kept],
        masked=np.array([Path(f).name.startswith("masked") for f in kept]),
        files=kept, failures=[f for f, ok in zip(files, found) if not ok])


def measure(data: RealMaskedSet, embed) -> dict:
    """Recognition on one split as `maskface eval` measures it, from crops aligned as the runtime
    aligns them (masked photos on the eyes and nose, bare ones on five points; the runtime decides
    by the model's maskProbability, here by the file name): masked probe vs every bare photo, and
    bare vs bare (each bare photo of a person with two or more against all other bare photos).
    Rank-1 counts photos without a face as wrong, as `maskface eval` does.

    embed: (N,112,112,3) uint8 RGB -> (N, D) unit vectors."""
    from .evaluate import auc, tar_at_far
    masked = np.flatnonzero(data.masked)
    bare = np.flatnonzero(~data.masked)
    who = np.array(data.identities)
    probe = embed(data.eyes_nose[masked])
    gallery = embed(data.five_point[bare])
    missing_masked = sum(Path(f).name.startswith("masked") for f in data.failures)
    result = {}

    def verification(scores: np.ndarray, same: np.ndarray) -> dict:
        genuine, impostor = scores[same], scores[~same]
        return {"auc": auc(genuine, impostor), "tar@1e-2": tar_at_far(genuine, impostor, 1e-2),
                "tar@1e-3": tar_at_far(genuine, impostor, 1e-3), "genuine": int(same.sum()),
                "impostor": int((~same).sum())}

    scores = probe @ gallery.T
    same = who[masked][:, None] == who[bare][None, :]
    result["masked_vs_bare"] = verification(scores.ravel(), same.ravel())
    hits = (who[bare][scores.argmax(1)] == who[masked]).sum()
    result["masked_vs_bare"]["rank1"] = float(hits / (len(masked) + missing_masked))

    scores = gallery @ gallery.T
    same = who[bare][:, None] == who[bare][None, :]
    upper = np.triu_indices(len(bare), k=1)
    result["bare_vs_bare"] = verification(scores[upper], same[upper])
    np.fill_diagonal(scores, -np.inf)
    several = same.sum(1) > 1      # another bare photo of the same person exists
    missing_bare = [f for f in data.failures if not Path(f).name.startswith("masked")]
    counts = {}
    for name in list(who[bare]) + [f.split("/")[0] for f in missing_bare]:
        counts[name] = counts.get(name, 0) + 1
    probes = sum(1 for f in missing_bare if counts[f.split("/")[0]] > 1) + int(several.sum())
    hits = (who[bare][scores.argmax(1)] == who[bare])[several].sum()
    result["bare_vs_bare"]["rank1"] = float(hits / probes)
    return result


def format_measure(name: str, result: dict) -> str:
    m, b = result["masked_vs_bare"], result["bare_vs_bare"]
    return (f"{name:40s} masked vs bare: AUC {m['auc']:.3f} TAR@1e-2 {100 * m['tar@1e-2']:.1f}% "
            f"TAR@1e-3 {100 * m['tar@1e-3']:.1f}% rank-1 {100 * m['rank1']:.1f}% | bare: AUC {b['auc']:.3f} "
            f"TAR@1e-2 {100 * b['tar@1e-2']:.1f}% rank-1 {100 * b['rank1']:.1f}%")


def contact_sheet(data: RealMaskedSet, path: str | Path, count: int = 12, seed: int = 0) -> None:
    """Masked photos of `count` identities: five-point crop over eyes-nose crop, then a bare crop."""
    import cv2
    rng = np.random.default_rng(seed)
    columns = []
    for i in rng.choice(np.flatnonzero(data.masked), size=count, replace=False):
        bare = [j for j, (who, m) in enumerate(zip(data.identities, data.masked)) if who == data.identities[i] and not m]
        third = data.five_point[bare[0]] if bare else np.zeros_like(data.five_point[i])
        columns.append(np.concatenate([data.five_point[i], data.eyes_nose[i], third], axis=0))
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(columns, axis=1), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])


def main() -> None:
    import argparse
    parser = argparse.ArgumentParser(
        description="Align rmfrd_real_masks with the runtime and print what was found; with run folders "
                    "(or 'teacher' for fr_feature), measure them on the 'val' identities.")
    parser.add_argument("runs", nargs="*", help="distill.py run folders (finished, or their last checkpoint)")
    parser.add_argument("--sheet", help="write a contact sheet of the 'train' split here")
    parser.add_argument("--json", help="append each run's measures to this JSON-lines file")
    args = parser.parse_args()
    if not args.runs:
        for split in SPLITS:
            data = load_rmfrd(split)
            total = len(data.files) + len(data.failures)
            print(f"{split:5s} {len(data.files):5d}/{total:5d} photos with a face ({int(data.masked.sum())} masked), "
                  f"{len(set(data.identities))} identities, {len(data.failures)} without a face")
            if args.sheet and split == "train":
                contact_sheet(data, args.sheet)
        return
    import torch
    from .distill import embed, load_student
    from .import_onnx import load_fr_feature
    torch.set_num_threads(2)
    torch.set_flush_denormal(True)
    val = load_rmfrd("val")
    for run in args.runs:
        model = load_fr_feature().eval() if run == "teacher" else load_student(run)
        result = measure(val, lambda images: embed(model, images))
        print(format_measure(run, result), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps({"run": run, **result}) + "\n")


if __name__ == "__main__":
    main()
