"""Augmentation for web photos of faces: small, blurred, recompressed, in odd light.

Applied to aligned 112x112 RGB crops. `geometric` jitters scale, rotation and position the way
landmarks found on a real (often masked) face miss the template; it is off for synthetic masks,
whose region labels must stay on their pixels. Every choice comes from the `rng` passed in.
"""
from __future__ import annotations

import cv2
import numpy as np


def web_augment(image: np.ndarray, rng: np.random.Generator, *, geometric: bool = True) -> np.ndarray:
    out = image
    if geometric and rng.random() < 0.7:
        angle = rng.uniform(-10, 10)
        scale = rng.uniform(0.9, 1.1)
        matrix = cv2.getRotationMatrix2D((55.5, 55.5), angle, scale)
        matrix[:, 2] += rng.uniform(-4, 4, size=2)
        out = cv2.warpAffine(out, matrix, (112, 112), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if rng.random() < 0.25:
        # A small face upscaled: what a 30-60 pixel face in a web photo looks like once aligned.
        side = int(rng.integers(28, 65))
        out = cv2.resize(cv2.resize(out, (side, side), interpolation=cv2.INTER_AREA), (112, 112),
                         interpolation=cv2.INTER_LINEAR)
    elif rng.random() < 0.2:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < 0.8:
        out = out.astype(np.float32)
        contrast = rng.uniform(0.75, 1.25)
        out = (out - out.mean()) * contrast + out.mean() + rng.uniform(-25, 25)
        grey = out.mean(axis=2, keepdims=True)
        saturation = 0.0 if rng.random() < 0.1 else rng.uniform(0.7, 1.3)
        out = grey + (out - grey) * saturation
        out = out * rng.uniform(0.92, 1.08, size=3)   # white balance
        out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        ok, encoded = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 81))])
        out = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    return np.ascontiguousarray(out)
