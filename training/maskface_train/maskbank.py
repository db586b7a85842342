"""Real mask appearance for synthetic masking: masks cut from real masked photos, pasted on bare faces.

A painted mask is opaque, unlit and drawn from a few outlines; a real one has fabric texture,
prints, light, folds, straps and the skin that shows around it. `build_mask_bank` cuts the masks
out of the masked photos of the rmfrd_real_masks 'train' identities (never 'val', which measures
recognition; never rwmfd_part1, which measures maskProbability):

1. the photo, aligned on five points by maskface's own pipeline (realmasks.load_rmfrd), goes
   through a CAL model (the bundled maskface-mbf-cal by default) and its 28x28 mask probability
   is upsampled to the frame;
2. GrabCut refines that coarse map on the photo's colours (sure mask where the probability is
   above 0.85, sure not-mask below 0.15 and above the nose bridge), so the cut follows the mask's
   real edge;
3. the largest connected piece is kept and its edge softened (alpha), and a cut-out is accepted
   only if it looks like a mask: it covers the mouth and the nose tip's row, its area is 10-50% of
   the frame, and it does not reach the eyes. Rejections are counted by reason.

`paste_real_mask` warps a cut-out by a small random similarity onto the face's own landmarks and
blends it with its alpha; the region labels are the mask wherever alpha >= 0.5, so the labels are
the pixels that were pasted. Cut-outs are cached next to the crops, keyed by the model's sha256.
"""
from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from . import facedata
from .import_onnx import REPO_ROOT
from .masks import BACKGROUND, FACE, MASK, TEMPLATE_LANDMARKS, face_prior_mask
from .ort_node import run_model

DEFAULT_MODEL = REPO_ROOT / "models" / "maskface-mbf-cal.onnx"
CACHE_VERSION = 1

# Rows of the 112x112 template: eyes at y 51.6, nose tip 71.7, mouth corners 92.3.
EYE_ROW = 51.6
NOSE_ROW = 71.7
MOUTH = (56, 92)
MIN_TOP_ROW = 56          # a cut-out reaching above this row covers the eyes: rejected
MIN_AREA, MAX_AREA = 0.10, 0.50


@dataclass
class MaskBank:
    """Cut-outs in the 112x112 template frame."""
    images: np.ndarray             # (M,112,112,3) uint8 RGB: the source photos
    alpha: np.ndarray              # (M,112,112) uint8: 255 mask, 0 not mask, soft at the edge
    sources: list[str]             # file of each cut-out, relative to rmfrd_real_masks
    rejected: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)


def mask_probability_maps(crops: np.ndarray, model: Path) -> np.ndarray:
    """(N,112,112) float32: the model's mask probability, upsampled from its 28x28 regions."""
    inputs = ((crops.astype(np.float32) - 127.0) / 128.0).transpose(0, 3, 1, 2)
    outputs, _ = run_model(model, inputs)
    if "regions" not in outputs:
        raise ValueError(f"{model} has no 'regions' output: a CAL model is needed to locate masks")
    regions = outputs["regions"].reshape(len(crops), 3, 28, 28)
    return np.stack([cv2.resize(r[MASK], (112, 112), interpolation=cv2.INTER_LINEAR) for r in regions])


def cut_out(image: np.ndarray, probability: np.ndarray) -> tuple[np.ndarray | None, str]:
    """(alpha uint8 112x112, "ok") or (None, reason)."""
    rows = np.arange(112)[:, None]
    trimap = np.full((112, 112), cv2.GC_PR_BGD, np.uint8)
    trimap[probability > 0.5] = cv2.GC_PR_FGD
    trimap[probability > 0.85] = cv2.GC_FGD
    trimap[(probability < 0.15) | np.broadcast_to(rows < EYE_ROW + 3, (112, 112))] = cv2.GC_BGD
    if not (trimap == cv2.GC_FGD).any():
        return None, "no confident mask pixel"
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(np.ascontiguousarray(image[:, :, ::-1]), trimap, None, background, foreground, 4,
                    cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return None, "grabcut failed"
    mask = ((trimap == cv2.GC_FGD) | (trimap == cv2.GC_PR_FGD)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    if count < 2:
        return None, "no mask piece"
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    mask = (labels == largest).astype(np.uint8)
    # Fill holes (a printed logo GrabCut called skin is still mask).
    holes = mask.copy()
    flood = np.zeros((114, 114), np.uint8)
    cv2.floodFill(holes, flood, (0, 0), 1)
    mask |= (holes == 0).astype(np.uint8)
    area = mask.mean()
    if not MIN_AREA <= area <= MAX_AREA:
        return None, "area out of range"
    if not mask[MOUTH[1], MOUTH[0]] or not mask[int(NOSE_ROW) + 4, 40:72].any():
        return None, "misses the mouth or nose"
    if np.flatnonzero(mask.any(1))[0] < MIN_TOP_ROW:
        return None, "reaches the eyes"
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.8)
    return np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8), "ok"


def build_mask_bank(model: Path = DEFAULT_MODEL, *, root: Path | None = None) -> MaskBank:
    """Cut-outs of every masked 'train' photo of rmfrd_real_masks that passes the checks (cached)."""
    from .realmasks import load_rmfrd
    data = load_rmfrd("train", root=root)      # 'train' identities only, by construction
    rows = np.flatnonzero(data.masked)
    crops = data.five_point[rows]
    digest = hashlib.sha256(f"maskbank-v{CACHE_VERSION}\0".encode())
    digest.update(hashlib.sha256(Path(model).read_bytes()).digest())
    digest.update(crops[:, ::5, ::5].tobytes())
    path = facedata.cache_dir() / f"maskbank-{digest.hexdigest()[:16]}.npz"
    if path.exists():
        cached = np.load(path, allow_pickle=False)
        return MaskBank(cached["images"], cached["alpha"], [str(s) for s in cached["sources"]],
                        dict(zip([str(k) for k in cached["reason_names"]], cached["reason_counts"].tolist())))
    started = time.monotonic()
    probability = mask_probability_maps(crops, Path(model))
    kept, alphas, rejected = [], [], {}
    for k, (image, p) in enumerate(zip(crops, probability)):
        alpha, reason = cut_out(image, p)
        if alpha is None:
            rejected[reason] = rejected.get(reason, 0) + 1
            continue
        kept.append(k)
        alphas.append(alpha)
    bank = MaskBank(crops[kept], np.stack(alphas), [data.files[rows[k]] for k in kept], rejected)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, images=bank.images, alpha=bank.alpha, sources=np.array(bank.sources),
             reason_names=np.array(list(rejected) or [""]), reason_counts=np.array(list(rejected.values()) or [0]))
    tmp.replace(path)
    print(f"mask bank: {len(bank)} of {len(crops)} masked photos cut out in {time.monotonic() - started:.0f} s; "
          f"rejected: {rejected}", file=sys.stderr)
    return bank


RECOLOUR_PROBABILITY = 0.35   # most real cut-outs are black or blue: give some another colour


def _recolour(pixels: np.ndarray, inside: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The cut-out's texture (folds, seams, prints, light) in another base colour: its luminance
    relative to its mean, times a random colour, blended toward that colour for dark masks."""
    if not inside.any():
        return pixels
    luminance = pixels @ np.array([0.299, 0.587, 0.114], np.float32)
    relative = luminance / max(float(luminance[inside].mean()), 8.0)
    colour = rng.uniform(30, 240, size=3).astype(np.float32)
    # A black mask's relative luminance is noisy: flatten it toward 1 so the new colour is even.
    relative = 1.0 + (relative - 1.0) * rng.uniform(0.3, 0.8)
    return relative[:, :, None] * colour


def paste_real_mask(image: np.ndarray, bank: MaskBank, rng: np.random.Generator,
                    landmarks5: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A random cut-out of `bank` on an aligned 112x112 face, placed by its landmarks.

    Returns (masked image uint8, region map uint8: 0 face, 1 mask, 2 background), the mask class
    exactly where the pasted alpha is at least one half."""
    index = int(rng.integers(len(bank)))
    source, alpha = bank.images[index], bank.alpha[index]
    if rng.random() < 0.5:
        source, alpha = source[:, ::-1], alpha[:, ::-1]
    target = TEMPLATE_LANDMARKS if landmarks5 is None else np.asarray(landmarks5, np.float32)
    # Source crops sit on the template; follow the target's nose and mouth (which the mask covers),
    # then jitter as a mask sits a little differently on every face.
    matrix = facedata.umeyama(TEMPLATE_LANDMARKS[2:], target[2:])
    jitter = cv2.getRotationMatrix2D((56.0, 75.0), rng.uniform(-6, 6), rng.uniform(0.94, 1.08))
    jitter[:, 2] += rng.uniform(-2.5, 2.5, size=2)
    matrix = np.vstack([jitter, [0, 0, 1]])[:2] @ np.vstack([matrix, [0, 0, 1]])
    warped = cv2.warpAffine(np.ascontiguousarray(source), matrix, (112, 112), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)
    weight = cv2.warpAffine(np.ascontiguousarray(alpha), matrix, (112, 112), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    warped = warped.astype(np.float32) * rng.uniform(0.75, 1.2)   # the cut-out's light is its photo's
    a = weight.astype(np.float32)[:, :, None] / 255.0
    if rng.random() < RECOLOUR_PROBABILITY:
        warped = _recolour(warped, a[:, :, 0] >= 0.5, rng)
    masked = np.clip(a * warped + (1 - a) * image.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)
    regions = np.full((112, 112), FACE, np.uint8)
    regions[~face_prior_mask(112)] = BACKGROUND
    regions[weight >= 128] = MASK
    return masked, regions


def contact_sheet(bank: MaskBank, faces: np.ndarray, path: str | Path, count: int = 8, seed: int = 0) -> None:
    """Rows: source photos with their cut-out outlined, then the cut-outs pasted on bare faces."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(bank), size=count, replace=False)
    top, middle, bottom = [], [], []
    for k in picks:
        source = bank.images[k].copy()
        edge = cv2.Canny((bank.alpha[k] >= 128).astype(np.uint8) * 255, 50, 150) > 0
        source[edge] = (255, 255, 0)
        top.append(source)
        middle.append(np.repeat(bank.alpha[k][:, :, None], 3, axis=2))
        face = faces[int(rng.integers(len(faces)))]
        pasted, _ = paste_real_mask(face, MaskBank(bank.images[k:k + 1], bank.alpha[k:k + 1], []), rng)
        bottom.append(pasted)
    sheet = np.concatenate([np.concatenate(row, axis=1) for row in (top, middle, bottom)], axis=0)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])


def main() -> None:
    import argparse
    parser = argparse.ArgumentParser(description="Cut masks out of the rmfrd 'train' photos and print counts.")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="CAL model that locates the masks")
    parser.add_argument("--sheet", type=Path, help="write a contact sheet (JPEG) here")
    args = parser.parse_args()
    bank = build_mask_bank(args.model)
    print(f"{len(bank)} cut-outs; rejected: {bank.rejected}")
    if args.sheet:
        faces = facedata.load_set("utkface", limit=200).crops
        contact_sheet(bank, faces, args.sheet)
        print(f"wrote {args.sheet}")


if __name__ == "__main__":
    main()
