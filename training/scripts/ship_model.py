"""Copy a finished distillation run's model into the package (models/) with its sidecar.

Usage (from training/): /usr/bin/python3 scripts/ship_model.py runs/<run>

The sidecar models/<name>.json is what the runtime checks before loading a bundled model
(lib/models.ts): name, version, sha256 and size of the .onnx, licence and description.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import onnx

REPO = Path(__file__).resolve().parents[2]
def licence(real: bool) -> str:
    data = "UTKFace, CelebA: non-commercial research" + ("; RMFRD: research use" if real else "")
    return ("weights derived from fr_feature.onnx (MIT as published in faceplugin-face-recognition-js@0.0.1); "
            f"fine-tuned on research-only data ({data}), see models/maskface-mbf-cal.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--models", type=Path, default=REPO / "models")
    args = parser.parse_args()
    source = args.run / "model.onnx"
    if not source.is_file():
        sys.exit(f"{source} is missing: the run has not finished")
    metadata = {p.key: p.value for p in onnx.load(str(source)).metadata_props}
    name, version = metadata["maskface.name"], metadata["maskface.version"]
    config = json.loads((args.run / "config.json").read_text())
    real = config.get("real_per_batch", 0) > 0
    args.models.mkdir(exist_ok=True)
    target = args.models / f"{name}.onnx"
    shutil.copyfile(source, target)
    data = target.read_bytes()
    sidecar = {
        "name": name,
        "version": version,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "licence": licence(real),
        "description": "MobileFaceNet (fr_feature) + MFSA attention distilled for masked faces"
                       + (" and trained on real masked photos" if real else "")
                       + f", gating {metadata.get('maskface.gating')}; 112x112 RGB, 512-d, regions [N,3,28,28]",
    }
    (args.models / f"{name}.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    print(f"{target} ({len(data)} bytes, sha256 {sidecar['sha256'][:16]}...)")


if __name__ == "__main__":
    main()
