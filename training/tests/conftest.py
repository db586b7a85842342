"""Shared fixtures: the pretrained fr_feature model, real faces, and the onnxruntime-node reference."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

TRAINING_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRAINING_DIR))

from maskface_train.import_onnx import REPO_ROOT, SOURCE_MODEL_NAME, load_fr_feature, model_dir  # noqa: E402

# The CI machines have 2 cores; more threads than cores only adds contention.
torch.set_num_threads(2)
# fr_feature holds thousands of denormal weights; flushing them makes its CPU runs ~3x faster.
torch.set_flush_denormal(True)

# Tests point MASKFACE_CACHE_DIR at temporary folders for their crop caches; the models stay where
# they are (model_dir() follows MASKFACE_CACHE_DIR when MASKFACE_MODEL_DIR is unset).
os.environ.setdefault("MASKFACE_MODEL_DIR", str(model_dir()))

ORT_REFERENCE = REPO_ROOT / "test" / "helpers" / "ort-reference.cjs"
DATA_DIR = Path(os.environ.get("MASKFACE_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def fr_feature_path() -> Path:
    path = model_dir() / SOURCE_MODEL_NAME
    if not path.is_file():
        pytest.skip(f"{path} is missing: run `npm run fetch:models`, or set MASKFACE_MODEL_DIR")
    return path


@pytest.fixture(scope="session")
def fr_feature(fr_feature_path: Path):
    return load_fr_feature(fr_feature_path)


def preprocess(images_rgb: np.ndarray) -> np.ndarray:
    """(N,112,112,3) uint8 RGB -> (N,3,112,112) float32 with fr_feature's (x - 127) / 128."""
    return ((images_rgb.astype(np.float32) - 127.0) / 128.0).transpose(0, 3, 1, 2).copy()


def lfw_faces(count: int) -> np.ndarray:
    """Up to `count` LFW faces (grey, 100x100, loosely aligned) as 112x112 RGB; empty if absent."""
    files = sorted((DATA_DIR / "lfw_aligned_100pair").glob("*/*.jpg"))[:count]
    faces = [cv2.resize(cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB), (112, 112),
                        interpolation=cv2.INTER_LINEAR) for f in files]
    return np.stack(faces) if faces else np.zeros((0, 112, 112, 3), np.uint8)


@pytest.fixture(scope="session")
def ort_reference(tmp_path_factory):
    """run(model, inputs (N,3,112,112) float32, output name?) -> (N, ...) flattened, from onnxruntime-node.

    onnxruntime-node cannot share a process with another ONNX Runtime, and Debian has no Python
    binding, so the project's Node helper runs it in a subprocess (NODE_PATH is passed through).
    """
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: the ONNX Runtime reference needs it")
    probe = subprocess.run([node, "-e", "require.resolve('onnxruntime-node')"], cwd=REPO_ROOT,
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"onnxruntime-node does not resolve from {REPO_ROOT}: run `npm install` there "
                    "or set NODE_PATH to a node_modules that has it")
    workdir = tmp_path_factory.mktemp("ort")

    def run(model: Path, inputs: np.ndarray, output: str | None = None) -> np.ndarray:
        input_path, output_path = workdir / "input.f32", workdir / "output.f32"
        np.ascontiguousarray(inputs, dtype=np.float32).tofile(input_path)
        shape = ",".join(str(d) for d in (1, *inputs.shape[1:]))
        result = subprocess.run([node, str(ORT_REFERENCE), str(model), str(input_path), shape, str(output_path),
                                 *([output] if output else [])],
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"ort-reference failed: {result.stderr}"
        return np.fromfile(output_path, dtype=np.float32).reshape(len(inputs), -1)

    return run


def synthetic_identities(identities: int, per_identity: int, seed: int = 0) -> tuple[list[np.ndarray], list[int]]:
    """Random 112x112 RGB 'faces': one smooth random colour field per identity plus per-image noise,
    so identities are separable (training on them can learn) but no two images are equal."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for identity in range(identities):
        base = cv2.resize(rng.uniform(0, 255, (4, 4, 3)).astype(np.float32), (112, 112),
                          interpolation=cv2.INTER_CUBIC)
        for _ in range(per_identity):
            images.append(np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8))
            labels.append(identity)
    return images, labels


def write_image_folder(root: Path, images: list[np.ndarray], labels: list[int], ext: str = ".png") -> Path:
    """root/id<label>/<n><ext>, RGB images written as files."""
    for n, (image, label) in enumerate(zip(images, labels)):
        folder = root / f"id{label:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(folder / f"{n:04d}{ext}"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return root
