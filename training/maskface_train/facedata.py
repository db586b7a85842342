"""Aligned 112x112 crops of the development photos: detect, 68 landmarks, 5 points, warp.

Detection is UltraFace-320 (fr_detect.onnx) and landmarks are fr_landmark.onnx, both from
faceplugin-face-recognition-js@0.0.1 as fetched by the Node package (`npm run fetch:models`),
run here with OpenCV's DNN module (Debian has no Python ONNX Runtime). Pre- and postprocessing
follow that package's own JavaScript: the detector sees the photo resized to 320x240, RGB,
(x - 127) / 128 and returns corner boxes in [0, 1]; the landmark model sees the detector's box
resized to 64x64 grey, / 256, and returns 68 points in [0, 1] of that box.

The warp is the runtime's: Umeyama similarity onto the ArcFace template, bilinear, zero border,
pixel centres at integer coordinates (cv2.warpAffine's convention, as in native/core/align.cc).

Tight crops (ORL, LFW-100, UTKFace, the CelebA crops) hold too little context for the detector:
on LFW-100 its boxes on the bare crops cut the faces and fr_feature's pair AUC falls to 0.84,
against 0.997 when the crop is first put inside a zero border of 40% per side. Sets of crops are
therefore detected inside that border; when even that finds nothing, the landmarks are taken on the
whole crop. Sets of photos are detected as they are, then inside the border. Photos with no face at all are counted and listed, never
silently dropped.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .import_onnx import REPO_ROOT, model_dir
from .masks import TEMPLATE_LANDMARKS

DETECTOR_NAME = "ultraface-320.onnx"
LANDMARK_NAME = "landmark68.onnx"
DATA_DIR = Path(os.environ.get("MASKFACE_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
CACHE_VERSION = 3

DETECT_SIZE = (320, 240)  # width, height
DETECT_THRESHOLD = 0.65   # the publishing package's confidence threshold
PADDING = 0.4
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".pgm", ".bmp"}


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Any image file as uint8 RGB HxWx3 (grey images are repeated over the three channels)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot decode {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """The template's 5 points from 68 iBUG landmarks: eye centres, nose tip, mouth corners."""
    p = landmarks68
    return np.stack([
        p[[37, 38, 40, 41]].mean(0), p[[43, 44, 46, 47]].mean(0), p[30],
        p[[48, 60]].mean(0), p[[54, 64]].mean(0)]).astype(np.float32)


def umeyama(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """2x3 similarity (rotation, uniform scale, translation) mapping source points onto target,
    least squares, no reflection (Umeyama 1991)."""
    src = source.astype(np.float64)
    dst = target.astype(np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(sigma) @ sign) / s.var(0).sum()
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mu_d - scale * rotation @ mu_s
    return matrix


def warp_to_template(image: np.ndarray, landmarks5: np.ndarray, size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    """(aligned crop, the 2x3 matrix image -> crop)."""
    matrix = umeyama(landmarks5, TEMPLATE_LANDMARKS * (size / 112.0))
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return crop, matrix


@dataclass
class Detection:
    box: np.ndarray       # x1, y1, x2, y2 in image pixels
    score: float


class FaceAligner:
    """Detector + landmarks + warp, all on the CPU through cv2.dnn."""

    def __init__(self, models: str | os.PathLike | None = None) -> None:
        folder = Path(models) if models is not None else model_dir()
        for name in (DETECTOR_NAME, LANDMARK_NAME):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder / name} is missing: run `npm run fetch:models` in the "
                                        "repository, or set MASKFACE_MODEL_DIR")
        self.detector = cv2.dnn.readNetFromONNX(str(folder / DETECTOR_NAME))
        self.landmarker = cv2.dnn.readNetFromONNX(str(folder / LANDMARK_NAME))

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an RGB image, most confident first (NMS at IoU 0.4)."""
        height, width = image.shape[:2]
        resized = cv2.resize(image, DETECT_SIZE, interpolation=cv2.INTER_LINEAR)
        blob = ((resized.astype(np.float32) - 127.0) / 128.0).transpose(2, 0, 1)[None]
        self.detector.setInput(np.ascontiguousarray(blob))
        boxes, scores = self.detector.forward(["boxes", "scores"])
        boxes, scores = boxes[0], scores[0][:, 1]
        keep = scores >= DETECT_THRESHOLD
        boxes, scores = boxes[keep] * [width, height, width, height], scores[keep]
        if len(scores) == 0:
            return []
        rects = [[float(x1), float(y1), float(x2 - x1), float(y2 - y1)] for x1, y1, x2, y2 in boxes]
        picked = cv2.dnn.NMSBoxes(rects, scores.tolist(), DETECT_THRESHOLD, 0.4)
        picked = np.array(picked).reshape(-1)
        return [Detection(boxes[i].astype(np.float32), float(scores[i])) for i in picked]

    def landmarks68(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """68 (x, y) points in image pixels from the detector box."""
        x1, y1, x2, y2 = box
        x1, y1 = max(0.0, x1), max(0.0, y1)
        x2, y2 = min(float(image.shape[1]), x2), min(float(image.shape[0]), y2)
        ix1, iy1, ix2, iy2 = int(x1), int(y1), int(np.ceil(x2)), int(np.ceil(y2))
        crop = cv2.cvtColor(image[iy1:iy2, ix1:ix2], cv2.COLOR_RGB2GRAY)
        crop = cv2.resize(crop, (64, 64), interpolation=cv2.INTER_LINEAR)
        self.landmarker.setInput((crop.astype(np.float32) / 256.0)[None, None])
        points = self.landmarker.forward().reshape(68, 2)
        return points * [ix2 - ix1, iy2 - iy1] + [ix1, iy1]

    def align(self, image: np.ndarray, tight: bool = False) -> "AlignedFace | None":
        """The most confident face, aligned; None if no face is found.

        Photos: detect as they are, then inside the zero border. Tight crops (`tight`): detect
        inside the border; if that finds nothing, the whole crop is taken as the face box (the
        detector's box on a bare tight crop is worse than no box at all)."""
        offset = int(round(PADDING * max(image.shape[:2])))
        padded = cv2.copyMakeBorder(image, offset, offset, offset, offset, cv2.BORDER_CONSTANT, value=0)
        whole = Detection(np.array([0, 0, image.shape[1], image.shape[0]], np.float32), 0.0)
        tries = [(padded, offset, None), (image, 0, whole)] if tight else [(image, 0, None), (padded, offset, None)]
        for image, offset, fallback in tries:
            detections = self.detect(image) if fallback is None else [fallback]
            if detections:
                break
        else:
            return None
        best = detections[0]
        points68 = self.landmarks68(image, best.box)
        crop, matrix = warp_to_template(image, five_points(points68))
        in_crop = points68 @ matrix[:, :2].T + matrix[:, 2]
        return AlignedFace(crop=crop, landmarks68=in_crop.astype(np.float32), score=best.score,
                           padded=offset > 0, faces=len(detections))


@dataclass
class AlignedFace:
    crop: np.ndarray          # uint8 RGB 112x112x3
    landmarks68: np.ndarray   # (68, 2) in crop pixels
    score: float              # detector confidence; 0 where a tight crop was taken whole
    padded: bool              # found inside the zero border
    faces: int                # how many faces the detector kept


# --- the development sets ------------------------------------------------------------------------

@dataclass(frozen=True)
class FaceSet:
    """A folder of ../shared/data: which files, and the identity of each (None when unlabelled)."""
    name: str
    folder: str
    labels_csv: str | None = None     # path,identity columns
    tight: bool = False               # face crops rather than photos: detect inside a border
    pattern: str = "**/*"


FACE_SETS = {
    "lfw": FaceSet("lfw", "lfw_aligned_100pair", "labels.csv", tight=True),
    "orl": FaceSet("orl", "orl_faces", "labels.csv", tight=True),
    "deepface": FaceSet("deepface", "deepface_testset", "labels_derived.csv"),
    "bbt": FaceSet("bbt", "faceapi_bbt", "labels.csv"),
    "rwmfd": FaceSet("rwmfd", "rwmfd_part1"),
    "utkface": FaceSet("utkface", "utkface_crop_part1", tight=True),
    "celeba": FaceSet("celeba", "celeba_crops_facemask12k", tight=True),
}


def _list_files(face_set: FaceSet, root: Path) -> tuple[list[str], list[str | None]]:
    base = root / face_set.folder
    if face_set.labels_csv:
        with open(base / face_set.labels_csv, newline="") as f:
            rows = list(csv.reader(f))[1:]
        return [r[0] for r in rows], [r[1] for r in rows]
    files = sorted(str(p.relative_to(base)) for p in base.glob(face_set.pattern)
                   if p.suffix.lower() in IMAGE_SUFFIXES)
    return files, [None] * len(files)


@dataclass
class AlignedSet:
    """Aligned crops of one FaceSet, cached as one .npz."""
    name: str
    crops: np.ndarray         # (N, 112, 112, 3) uint8 RGB
    landmarks68: np.ndarray   # (N, 68, 2) float32 in crop pixels
    files: list[str]          # relative to the set's folder
    identities: list[str | None]
    scores: np.ndarray        # detector confidence
    failures: list[str] = field(default_factory=list)   # no face found: not in the set
    whole: list[str] = field(default_factory=list)      # tight crops taken whole (no detection)

    @property
    def landmarks5(self) -> np.ndarray:
        return np.stack([five_points(p) for p in self.landmarks68]) if len(self.landmarks68) else \
            np.zeros((0, 5, 2), np.float32)

    def labels(self) -> np.ndarray:
        """Identity index per crop (sorted identity names); -1 where unlabelled."""
        names = sorted({i for i in self.identities if i is not None})
        index = {n: k for k, n in enumerate(names)}
        return np.array([index[i] if i is not None else -1 for i in self.identities], np.int64)


def cache_dir() -> Path:
    root = os.environ.get("MASKFACE_CACHE_DIR")
    return (Path(root) if root else REPO_ROOT / ".cache") / "training"


def _fingerprint(files: list[str], root: Path, face_set: FaceSet) -> str:
    digest = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    for name in files:
        stat = (root / face_set.folder / name).stat()
        digest.update(f"{name}\0{stat.st_size}\0".encode())
    return digest.hexdigest()[:16]


def load_set(name: str, *, root: Path | None = None, aligner: FaceAligner | None = None,
             limit: int | None = None, progress: bool = True) -> AlignedSet:
    """Aligned crops of a development set, from the cache or computed (and cached) now."""
    face_set = FACE_SETS[name]
    root = root or DATA_DIR
    if not (root / face_set.folder).is_dir():
        raise FileNotFoundError(f"{root / face_set.folder} is missing (set MASKFACE_DATA_DIR)")
    files, identities = _list_files(face_set, root)
    if limit is not None:
        files, identities = files[:limit], identities[:limit]
    key = _fingerprint(files, root, face_set)
    path = cache_dir() / f"{name}-{key}.npz"
    if path.exists():
        data = np.load(path, allow_pickle=False)
        meta = json.loads(str(data["meta"]))
        return AlignedSet(name, data["crops"], data["landmarks68"], meta["files"], meta["identities"],
                          data["scores"], meta["failures"], meta["whole"])

    aligner = aligner or FaceAligner()
    crops, points, kept, kept_ids, scores, failures, whole = [], [], [], [], [], [], []
    started = time.monotonic()
    for index, (file, identity) in enumerate(zip(files, identities)):
        face = aligner.align(read_rgb(root / face_set.folder / file), tight=face_set.tight)
        if face is None:
            failures.append(file)
        else:
            crops.append(face.crop)
            points.append(face.landmarks68)
            kept.append(file)
            kept_ids.append(identity)
            scores.append(face.score)
            if face.score == 0.0:
                whole.append(file)
        if progress and ((index + 1) % 500 == 0 or index + 1 == len(files)):
            print(f"align {name}: {index + 1}/{len(files)} ({len(failures)} without a face) "
                  f"{time.monotonic() - started:.0f} s", file=sys.stderr)
    aligned = AlignedSet(
        name, np.stack(crops) if crops else np.zeros((0, 112, 112, 3), np.uint8),
        np.stack(points) if points else np.zeros((0, 68, 2), np.float32),
        kept, kept_ids, np.array(scores, np.float32), failures, whole)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"files": kept, "identities": kept_ids, "failures": failures, "whole": whole})
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, crops=aligned.crops, landmarks68=aligned.landmarks68, scores=aligned.scores,
             meta=np.array(meta))
    os.replace(tmp, path)
    return aligned


def main() -> None:
    parser = argparse.ArgumentParser(description="Align the development sets and print what was found.")
    parser.add_argument("sets", nargs="*", default=list(FACE_SETS), help=f"any of {', '.join(FACE_SETS)}")
    parser.add_argument("--sheet", help="write a contact sheet PNG of a few crops per set here")
    args = parser.parse_args()
    sheets = []
    for name in args.sets:
        aligned = load_set(name)
        total = len(aligned.files) + len(aligned.failures)
        print(f"{name:9s} {len(aligned.files):5d}/{total:5d} aligned ({len(aligned.whole)} taken whole), "
              f"{len(aligned.failures)} without a face"
              + (f" (e.g. {', '.join(aligned.failures[:3])})" if aligned.failures else ""))
        if args.sheet and len(aligned.crops):
            picks = np.linspace(0, len(aligned.crops) - 1, 8).astype(int)
            sheets.append(np.concatenate([aligned.crops[i] for i in picks], axis=1))
    if args.sheet and sheets:
        cv2.imwrite(args.sheet, cv2.cvtColor(np.concatenate(sheets, axis=0), cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
