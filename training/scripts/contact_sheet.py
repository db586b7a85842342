"""Contact sheet of the synthetic masks on real faces: training/docs/masks_contact_sheet.png.

Rows are faces, columns are mask styles; each masked face sits next to its region map (face
green, mask red, background blue) with the face prior's outline in white.

The faces are APPROXIMATELY aligned: the 112x112 ArcFace crops do not exist yet, so each source
folder gets one fixed similarity transform to the ArcFace template, estimated from landmark
positions read off the mean of 30 of its images (not per face). LFW (lfw_aligned_100pair) is grey
100x100, a tighter crop than ArcFace's, replicated to 3 channels; UTKFace (crop_part1) is colour
200x200. Individual faces can sit a few pixels off the template, so masks placed from the
template landmarks can sit a little off too.

With --lit the masks are lit by the face's own light with soft edges (render_mask(lit=True);
the same masks as without it, seed for seed): docs/masks_contact_sheet_lit.png.

Usage: /usr/bin/python3 training/scripts/contact_sheet.py [--data DIR] [--out PNG] [--lit]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

TRAINING_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRAINING_DIR))

from maskface_train.masks import STYLES, TEMPLATE_LANDMARKS, face_prior_outline, render_mask  # noqa: E402

DEFAULT_DATA = TRAINING_DIR.parents[1] / "shared" / "data"
DEFAULT_OUT = TRAINING_DIR / "docs" / "masks_contact_sheet.png"

# Mean landmark positions (left eye, right eye, nose tip, mouth corners) in each folder's own
# pixels, read off a 30-image average: rough, one per folder.
SOURCES = {
    "lfw_aligned_100pair/*/*.jpg": np.float32([[23, 32], [75, 32], [49, 60], [27, 75], [73, 75]]),
    "utkface_crop_part1/crop_part1/*.jpg": np.float32([[60, 55], [130, 55], [94, 104], [66, 140], [120, 140]]),
}
FACES_PER_SOURCE = 3
REGION_COLOURS = np.uint8([[60, 170, 60], [210, 50, 50], [50, 80, 200]])  # RGB: face, mask, background


def aligned_faces(data_dir: Path) -> list[np.ndarray]:
    """A few faces per source folder, warped to the 112x112 ArcFace frame (RGB)."""
    faces = []
    for pattern, landmarks in SOURCES.items():
        files = sorted(data_dir.glob(pattern))
        picks = np.linspace(0, len(files) - 1, FACES_PER_SOURCE + 2).astype(int)[1:-1]  # spread out
        transform, _ = cv2.estimateAffinePartial2D(landmarks, TEMPLATE_LANDMARKS)
        for index in picks:
            bgr = cv2.imread(str(files[index]))  # grey JPEGs load as 3 equal channels
            faces.append(cv2.cvtColor(cv2.warpAffine(bgr, transform, (112, 112), flags=cv2.INTER_LINEAR),
                                      cv2.COLOR_BGR2RGB))
    return faces


def region_picture(regions: np.ndarray) -> np.ndarray:
    picture = REGION_COLOURS[regions].copy()
    cv2.polylines(picture, [face_prior_outline()], True, (255, 255, 255), 1, cv2.LINE_AA)
    return picture


def contact_sheet(faces: list[np.ndarray], seed: int = 0, lit: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gap = np.full((112, 4, 3), 255, np.uint8)
    rows = []
    for face in faces:
        cells = [face, gap]
        for style in STYLES:
            masked, regions = render_mask(face, rng, style=style, lit=lit)
            cells += [masked, region_picture(regions), gap]
        rows.append(np.hstack(cells[:-1]))
    return np.vstack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--lit", action="store_true", help="masks lit by the face, soft edges")
    args = parser.parse_args()
    out = args.out or (DEFAULT_OUT.with_name("masks_contact_sheet_lit.png") if args.lit else DEFAULT_OUT)
    sheet = contact_sheet(aligned_faces(args.data), lit=args.lit)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"{out}: {sheet.shape[1]}x{sheet.shape[0]}, {out.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
