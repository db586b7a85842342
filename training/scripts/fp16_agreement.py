"""Agreement of a float16 model with its float32 original, on real aligned faces, with onnxruntime-node.

Usage (from training/):
    /usr/bin/python3 scripts/fp16_agreement.py [--fp32 ../models/maskface-mbf-cal.onnx]
        [--fp16 ../models/maskface-mbf-cal-fp16.onnx] [--sets lfw,rwmfd] [--limit N] [--json out.json]

Faces are the aligned 112x112 crops of maskface_train.facedata (cached in .cache/training; set
MASKFACE_CACHE_DIR to use another checkout's cache), normalised as the float32 model's metadata
says (maskface.mean / maskface.std, RGB, NCHW). Three runs, one face at a time, on the CPU:

- fp32: the original model;
- fp16 (ORT CPU): the float16 model as ONNX Runtime's CPU provider runs it: it has float16 kernels
  for data movement only, so it computes Conv, PRelu, Add, Mul, Sub and Relu in float32 from the
  float16 weights (the effect of the weights, hardly of float16 activations);
- fp16 (emulated): maskface_train.fp16.fp16_rounding_emulation, float32 arithmetic with every value
  the float16 model holds in float16 rounded to float16 where it is produced (a GPU's float16
  kernels accumulating in float32).

Reports per-face cosine of the embeddings against fp32 (min, mean), the largest and mean absolute
difference of the `regions` probabilities, how many faces differ by more than 1e-2 in some cell,
and the largest difference of the runtime's maskProbability (mean P[mask] over the lower face).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

TRAINING_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRAINING_DIR))

from maskface_train.facedata import load_set  # noqa: E402
from maskface_train.fp16 import fp16_rounding_emulation  # noqa: E402
from maskface_train.ort_node import run_model  # noqa: E402

MODELS = TRAINING_DIR.parent / "models"


def normalise(crops_rgb: np.ndarray, metadata: dict[str, str]) -> np.ndarray:
    """(N,112,112,3) uint8 RGB -> (N,3,112,112) float32 with the model's mean and std."""
    mean = np.array([float(v) for v in metadata["maskface.mean"].split(",")], np.float32)
    std = np.array([float(v) for v in metadata["maskface.std"].split(",")], np.float32)
    return ((crops_rgb.astype(np.float32) - mean) / std).transpose(0, 3, 1, 2).copy()


def lower_face_cells(size: int = 28) -> np.ndarray:
    """Cells whose centre lies in the face prior at or below the nose tip (lib/api/regions.ts)."""
    centres = (np.arange(size) + 0.5) * (112 / size) - 0.5
    y, x = np.meshgrid(centres, centres, indexing="ij")
    inside = (((x - 56) / 40) ** 2 + ((y - 58) / 52) ** 2 <= 1) & (y >= 72)
    return np.flatnonzero(inside.ravel())


def mask_probability(regions: np.ndarray) -> np.ndarray:
    """maskProbability of the runtime: mean P[mask] over the lower face, per face ([N, 3*28*28])."""
    mask = regions.reshape(len(regions), 3, -1)[:, 1]
    return mask[:, lower_face_cells(int(round(np.sqrt(mask.shape[1]))))].mean(1)


def agreement(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray]) -> dict:
    """Per-face embedding cosine and regions differences of `candidate` against `reference`."""
    a, b = reference["embedding"].astype(np.float64), candidate["embedding"].astype(np.float64)
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    result = {"faces": len(a), "cosine_min": float(cosine.min()), "cosine_mean": float(cosine.mean()),
              "cosine_median": float(np.median(cosine)), "cosine": cosine}
    if "regions" in reference:
        diff = np.abs(reference["regions"].astype(np.float64) - candidate["regions"])
        face_max = diff.max(1)
        result.update(regions_max_abs=float(diff.max()), regions_mean_abs=float(diff.mean()),
                      regions_faces_over_1e_2=int((face_max > 1e-2).sum()), regions_face_max=face_max,
                      mask_probability_max_abs=float(np.abs(mask_probability(reference["regions"])
                                                            - mask_probability(candidate["regions"])).max()))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fp32", type=Path, default=MODELS / "maskface-mbf-cal.onnx")
    parser.add_argument("--fp16", type=Path, default=MODELS / "maskface-mbf-cal-fp16.onnx")
    parser.add_argument("--sets", default="lfw,rwmfd", help="facedata sets (default: %(default)s)")
    parser.add_argument("--limit", type=int, help="first N aligned faces of each set")
    parser.add_argument("--json", type=Path, help="write the summary here")
    args = parser.parse_args()

    metadata = {p.key: p.value for p in onnx.load(str(args.fp32)).metadata_props}
    sets = {}
    for name in args.sets.split(","):
        crops = load_set(name, progress=False).crops
        sets[name] = crops[: args.limit] if args.limit else crops
    faces = np.concatenate([normalise(c, metadata) for c in sets.values()])
    bounds = np.cumsum([0, *(len(c) for c in sets.values())])

    with tempfile.TemporaryDirectory(prefix="fp16-agreement-") as work:
        emulation = Path(work) / "emulated.onnx"
        onnx.save(fp16_rounding_emulation(onnx.load(str(args.fp16))), str(emulation))
        runs = {}
        for label, model, level in [("fp32", args.fp32, "all"), ("fp16 (ORT CPU)", args.fp16, "all"),
                                    ("fp16 (emulated)", emulation, "disabled")]:
            runs[label], info = run_model(model, faces, optimisation=level)
            print(f"{label}: {len(faces)} faces in {info['ms'] / 1000:.1f} s "
                  f"(onnxruntime-node {info['ortVersion']}, 1 thread, optimisation {level})", file=sys.stderr)

    summary = {"fp32": str(args.fp32.name), "fp16": str(args.fp16.name), "ortVersion": info["ortVersion"],
               "sets": {name: int(len(c)) for name, c in sets.items()}, "normalisation":
               f"(x - {metadata['maskface.mean']}) / {metadata['maskface.std']}, RGB, NCHW", "results": {}}
    print(f"{'run':17s} {'set':6s} {'faces':>5s} {'cos min':>9s} {'cos mean':>9s} {'regions max':>11s} "
          f"{'regions mean':>12s} {'>1e-2':>5s} {'maskP max':>9s}")
    for label in ["fp16 (ORT CPU)", "fp16 (emulated)"]:
        rows = {}
        for (name, start, stop) in [*((n, bounds[k], bounds[k + 1]) for k, n in enumerate(sets)),
                                    ("all", 0, len(faces))]:
            part = lambda run: {k: v[start:stop] for k, v in run.items()}  # noqa: E731
            result = agreement(part(runs["fp32"]), part(runs[label]))
            print(f"{label:17s} {name:6s} {result['faces']:5d} {result['cosine_min']:9.6f} "
                  f"{result['cosine_mean']:9.6f} {result.get('regions_max_abs', float('nan')):11.2e} "
                  f"{result.get('regions_mean_abs', float('nan')):12.2e} "
                  f"{result.get('regions_faces_over_1e_2', 0):5d} "
                  f"{result.get('mask_probability_max_abs', float('nan')):9.2e}")
            rows[name] = {k: v for k, v in result.items() if not isinstance(v, np.ndarray)}
        summary["results"][label] = rows
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
