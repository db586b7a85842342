"""Synthetic face-mask renderer and per-pixel region labels (DESIGN §1, "Frame", "Region labels").

The frame is the 112x112 ArcFace crop. A mask is an outline polygon built in a face frame taken
from the five landmarks (origin at the nose tip, x along the eye line, y down, pixels scaled by the
inter-ocular distance), jittered, tilted about the nose, and rasterised ONCE: that one boolean
raster is both what gets painted into the image and the label's mask class, so labels are exact.

Region classes: 0 visible face, 1 mask, 2 background (outside FACE_PRIOR and not mask).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from .mfsa import BACKGROUND, FACE, MASK

FRAME_SIZE = 112

# ArcFace 5-point template (x, y) in the 112x112 frame: left eye, right eye, nose tip, left and
# right mouth corners.
TEMPLATE_LANDMARKS = np.array([
    [38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
    [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)

TEMPLATE_INTEROCULAR = float(np.linalg.norm(TEMPLATE_LANDMARKS[1] - TEMPLATE_LANDMARKS[0]))  # 35.24


@dataclass(frozen=True)
class EllipsePrior:
    """An axis-aligned ellipse in 112x112 template coordinates (pixel centres at integers)."""
    centre_x: float
    centre_y: float
    semi_axis_x: float
    semi_axis_y: float


# Fixed face-region prior. Derived from the template (eye-mouth distance 40.7, inter-ocular 35.2):
# - centre_x 56.0: the landmarks' horizontal midpoint (eyes 55.9, mouth 56.1);
# - top y = 6: eye line (51.6) minus 1.1 eye-mouth distances, the hairline/forehead of the crop;
# - bottom y = 110: mouth (92.3) plus 0.43 eye-mouth distances, the chin;
#   so centre_y = 58 and semi_axis_y = 52;
# - semi_axis_x 40 (1.14 inter-ocular): x 16..96 at the widest, the temples/cheeks; at the mouth
#   row it is 30 px either side of the centre, past the mouth corners (±14.6) to the jaw.
# All five landmarks lie inside with margin (mouth corners at 0.57 of the ellipse's "radius").
FACE_PRIOR = EllipsePrior(centre_x=56.0, centre_y=58.0, semi_axis_x=40.0, semi_axis_y=52.0)


@lru_cache(maxsize=4)
def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return xs, ys


@lru_cache(maxsize=4)
def _face_prior_cached(size: int) -> np.ndarray:
    xs, ys = _pixel_grid(size)
    scale = size / FRAME_SIZE
    p = FACE_PRIOR
    inside = (((xs - p.centre_x * scale) / (p.semi_axis_x * scale)) ** 2
              + ((ys - p.centre_y * scale) / (p.semi_axis_y * scale)) ** 2) <= 1.0
    inside.flags.writeable = False  # cached and shared: callers get a read-only view
    return inside


def face_prior_mask(size: int = FRAME_SIZE) -> np.ndarray:
    """bool (size, size): True inside FACE_PRIOR, scaled from the 112 frame."""
    return _face_prior_cached(size)


def face_prior_outline(size: int = FRAME_SIZE) -> np.ndarray:
    """int32 (N, 2) polygon approximating the prior's outline, for drawing."""
    scale = size / FRAME_SIZE
    p = FACE_PRIOR
    return cv2.ellipse2Poly((round(p.centre_x * scale), round(p.centre_y * scale)),
                            (round(p.semi_axis_x * scale), round(p.semi_axis_y * scale)), 0, 0, 360, 5)


# --- face frame --------------------------------------------------------------------------------

@dataclass(frozen=True)
class FaceFrame:
    """Nose-centred frame: image point = nose + scale * (u * x_axis + v * y_axis)."""
    nose: np.ndarray
    x_axis: np.ndarray  # unit vector, left eye -> right eye
    y_axis: np.ndarray  # unit vector, perpendicular, pointing down the face
    scale: float        # image pixels per template pixel
    eye_v: float        # v of the eye line (negative: above the nose)
    mouth_corners_u: tuple[float, float]

    @staticmethod
    def from_landmarks(landmarks5: np.ndarray) -> "FaceFrame":
        lm = np.asarray(landmarks5, dtype=np.float32)
        eye_vector = lm[1] - lm[0]
        x_axis = eye_vector / np.linalg.norm(eye_vector)
        y_axis = np.array([-x_axis[1], x_axis[0]], dtype=np.float32)
        scale = float(np.linalg.norm(eye_vector)) / TEMPLATE_INTEROCULAR
        nose = lm[2]
        local = (lm - nose) @ np.stack([x_axis, y_axis], axis=1) / scale
        return FaceFrame(nose=nose, x_axis=x_axis, y_axis=y_axis, scale=scale,
                         eye_v=float(local[:2, 1].mean()),
                         mouth_corners_u=(float(local[3, 0]), float(local[4, 0])))

    def to_image(self, points_uv: np.ndarray) -> np.ndarray:
        return self.nose + self.scale * (points_uv[:, :1] * self.x_axis + points_uv[:, 1:] * self.y_axis)

    def to_uv(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = xs - self.nose[0], ys - self.nose[1]
        u = (dx * self.x_axis[0] + dy * self.x_axis[1]) / self.scale
        v = (dx * self.y_axis[0] + dy * self.y_axis[1]) / self.scale
        return u, v


# --- shapes ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Placement:
    """Jittered extent of a mask in the face frame (template pixels, before the tilt)."""
    top_v: float        # top edge at the nose bridge, between the eye line and the nose tip
    half_width: float   # sides, past the mouth corners towards the face outline
    bottom_v: float     # bottom edge, below the chin
    tilt: float         # radians, rotation about the nose tip
    shift: tuple[float, float]


@dataclass
class MaskShape:
    """Outline polygon plus decorations, all (N, 2) arrays in the face frame."""
    outline: np.ndarray
    straps: list[np.ndarray] = field(default_factory=list)   # ear loops / ties, drawn as lines
    seams: list[np.ndarray] = field(default_factory=list)    # darker lines inside the mask
    pleats: list[float] = field(default_factory=list)        # v of horizontal pleat lines


CHIN_V = 37.0  # chin below the nose tip in the template (y 108.7), just inside the prior's bottom
# The mask never reaches higher than this far below the eye line (template pixels), so the eyes
# and the rows around them always stay visible face whatever the jitter and tilt.
EYE_CLEARANCE = 5.0


def _sample_placement(rng: np.random.Generator, frame: FaceFrame) -> Placement:
    nose_to_eyes = -frame.eye_v  # ~20.1 in the template
    mouth_half_width = max(abs(u) for u in frame.mouth_corners_u)  # ~14.6
    return Placement(
        top_v=-nose_to_eyes * rng.uniform(0.42, 0.68),
        half_width=mouth_half_width + rng.uniform(11.0, 17.0),
        bottom_v=CHIN_V + rng.uniform(0.0, 6.0),
        tilt=np.deg2rad(rng.uniform(-7.0, 7.0)),
        shift=(rng.uniform(-1.5, 1.5), rng.uniform(-1.0, 1.5)),
    )


def _edge(start: tuple[float, float], end: tuple[float, float], sag: float, count: int = 9) -> np.ndarray:
    """Points from start to end bowed by `sag` along +v at the middle (parabolic)."""
    t = np.linspace(0.0, 1.0, count, dtype=np.float32)[:, None]
    points = (1 - t) * np.float32(start) + t * np.float32(end)
    points[:, 1] += sag * 4 * t[:, 0] * (1 - t[:, 0])
    return points


def _surgical(p: Placement, rng: np.random.Generator) -> MaskShape:
    w, top, bottom = p.half_width, p.top_v, p.bottom_v
    side_top = top + rng.uniform(3.0, 6.0)          # the wire dips from the nose to the cheeks
    bottom_w = w * rng.uniform(0.78, 0.9)
    outline = np.concatenate([
        _edge((-w, side_top), (0.0, top), -1.5, 6), _edge((0.0, top), (w, side_top), -1.5, 6)[1:],
        _edge((w, side_top), (bottom_w, bottom - 8.0), 0.0, 3)[1:],
        _edge((bottom_w, bottom - 8.0), (-bottom_w, bottom - 8.0), 8.0, 11)[1:],
    ])
    ear_v = top + rng.uniform(0.0, 4.0)
    straps = [np.float32([[s * w, side_top + 1.0], [s * (w + 9.0), ear_v], [s * bottom_w, bottom - 9.0]])
              for s in (-1, 1)]
    pleat_span = np.linspace(side_top + 4.0, bottom - 12.0, 5)[1:-1]
    return MaskShape(outline, straps=straps, pleats=list(pleat_span))


def _cloth(p: Placement, rng: np.random.Generator) -> MaskShape:
    w, top, bottom = p.half_width, p.top_v, p.bottom_v
    centre_v, half_height = (top + bottom) / 2, (bottom - top) / 2
    exponent = rng.uniform(2.6, 3.6)  # superellipse: 2 is an ellipse, larger is squarer
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False, dtype=np.float32)
    cos, sin = np.cos(angles), np.sin(angles)
    u = w * np.sign(cos) * np.abs(cos) ** (2 / exponent)
    v = centre_v + half_height * np.sign(sin) * np.abs(sin) ** (2 / exponent)
    # Over the nose the cloth rises to a soft peak and falls towards the cheeks.
    upper = v < centre_v
    v[upper] += 4.0 * (u[upper] / w) ** 2
    # Ties start where the rounded outline is at its widest, so they meet the cloth.
    straps = [np.float32([[s * w * 0.97, centre_v - 0.2 * half_height], [s * (w + 8.0), top + 3.0]])
              for s in (-1, 1)]
    seams = [_edge((0.0, top + 1.0), (0.0, bottom - 1.0), 0.0, 2)] if rng.random() < 0.6 else []
    return MaskShape(np.stack([u, v], axis=1), straps=straps, seams=seams)


def _kn95(p: Placement, rng: np.random.Generator) -> MaskShape:
    w, top, bottom = p.half_width, p.top_v, p.bottom_v
    shoulder_v = top + rng.uniform(6.0, 9.0)
    outline = np.concatenate([
        _edge((0.0, top), (w, shoulder_v), 1.0, 5),
        _edge((w, shoulder_v), (w * 0.92, bottom - 12.0), 0.0, 3)[1:],
        _edge((w * 0.92, bottom - 12.0), (0.0, bottom + 1.0), 2.0, 5)[1:],
        _edge((0.0, bottom + 1.0), (-w * 0.92, bottom - 12.0), -2.0, 5)[1:],
        _edge((-w * 0.92, bottom - 12.0), (-w, shoulder_v), 0.0, 3)[1:],
        _edge((-w, shoulder_v), (0.0, top), 1.0, 5)[1:-1],
    ])
    straps = [np.float32([[s * w, shoulder_v + 2.0], [s * (w + 8.0), shoulder_v]]) for s in (-1, 1)]
    seams = [_edge((0.0, top), (0.0, bottom + 1.0), 0.0, 2)]  # the fold that makes the cup
    return MaskShape(outline, straps=straps, seams=seams)


def _bandana(p: Placement, rng: np.random.Generator) -> MaskShape:
    # A folded triangle tied behind the head: straight top edge across the nose, the point hangs
    # far below the chin, so in the 112 frame it covers everything down to the image bottom.
    w, top = p.half_width + rng.uniform(4.0, 9.0), p.top_v + rng.uniform(0.0, 2.0)
    hang = 80.0  # well past the frame's bottom edge; cv2 clips the fill to the image
    outline = np.float32([[-w, top], [w, top], [w * 0.95, top + 25.0], [0.0, top + hang],
                          [-w * 0.95, top + 25.0]])
    seams = [_edge((-w, top + 1.5), (w, top + 1.5), 0.0, 2)]  # the folded hem
    return MaskShape(outline, seams=seams)


STYLES = {"surgical": _surgical, "cloth": _cloth, "kn95": _kn95, "bandana": _bandana}

# --- rasterising ------------------------------------------------------------------------------

SUBPIXEL_BITS = 4


def _place(points_uv: np.ndarray, p: Placement, frame: FaceFrame) -> np.ndarray:
    """Tilt about the nose, shift, clamp below the eye line, map to image pixels."""
    c, s = np.cos(p.tilt), np.sin(p.tilt)
    rotated = points_uv @ np.float32([[c, s], [-s, c]]) + np.float32(p.shift)
    # Tilt can lift a top corner; clamping it keeps the "never above the eyes" rule exact.
    rotated[:, 1] = np.maximum(rotated[:, 1], frame.eye_v + EYE_CLEARANCE)
    return frame.to_image(rotated)


def _fixed_point(points: np.ndarray) -> np.ndarray:
    return np.round(points * (1 << SUBPIXEL_BITS)).astype(np.int32)


def _rasterise(shape: MaskShape, p: Placement, frame: FaceFrame, size: int,
               strap_thickness: int) -> tuple[np.ndarray, np.ndarray]:
    """-> (bool mask raster, bool strap raster). The straps are part of the mask."""
    body = np.zeros((size, size), np.uint8)
    cv2.fillPoly(body, [_fixed_point(_place(shape.outline, p, frame))], 1, cv2.LINE_8, SUBPIXEL_BITS)
    straps = np.zeros_like(body)
    if shape.straps:
        cv2.polylines(straps, [_fixed_point(_place(s, p, frame)) for s in shape.straps], False, 1,
                      strap_thickness, cv2.LINE_8, SUBPIXEL_BITS)
    return (body | straps).astype(bool), straps.astype(bool) & ~body.astype(bool)


# --- appearance -------------------------------------------------------------------------------

PALETTES = {  # RGB; a random colour replaces these 30% of the time
    "surgical": [(170, 205, 230), (235, 240, 242), (40, 42, 48), (240, 190, 200), (150, 215, 200)],
    "cloth": [(30, 35, 60), (120, 25, 35), (70, 90, 60), (200, 200, 195), (25, 25, 25), (210, 160, 120)],
    "kn95": [(240, 240, 238), (40, 40, 45), (185, 185, 190), (215, 200, 180)],
    "bandana": [(170, 30, 35), (25, 40, 90), (25, 25, 28), (200, 120, 40)],
}


def _base_colour(style: str, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.3:
        return rng.uniform(20, 240, 3).astype(np.float32)
    palette = PALETTES[style]
    jitter = rng.normal(0, 8, 3)
    return np.clip(np.float32(palette[rng.integers(len(palette))]) + jitter, 0, 255).astype(np.float32)


def _pattern(kind: str, u: np.ndarray, v: np.ndarray, rng: np.random.Generator,
             raster: np.ndarray) -> np.ndarray:
    """Pattern weight in [0, 1] (1 = second colour) at the mask pixels (u, v: their coordinates)."""
    if kind == "stripes":
        angle = rng.uniform(0, np.pi)
        along = u * np.cos(angle) + v * np.sin(angle)
        return (np.sin(along * (2 * np.pi / rng.uniform(4.0, 9.0)) + rng.uniform(0, 6.3)) > 0.3).astype(np.float32)
    if kind == "dots":
        period, radius = rng.uniform(5.0, 9.0), rng.uniform(1.0, 2.0)
        du = (u + rng.uniform(0, period)) % period - period / 2
        dv = (v + rng.uniform(0, period)) % period - period / 2
        return (du * du + dv * dv <= radius * radius).astype(np.float32)
    if kind == "noise":  # fabric mottling: low-resolution noise, smoothly upsampled
        coarse = rng.random((rng.integers(6, 16),) * 2, dtype=np.float32)
        return cv2.resize(coarse, raster.shape[::-1], interpolation=cv2.INTER_CUBIC)[raster].clip(0, 1)
    return np.zeros_like(u)


PATTERNS = ("plain", "stripes", "dots", "noise")


def _shading(body: np.ndarray, raster: np.ndarray, v: np.ndarray, p: Placement,
             rng: np.random.Generator) -> np.ndarray:
    """Multiplicative brightness at the mask pixels: darker (or lighter) towards the outline, where
    the fabric curves away from the light, plus one or two soft folds and a vertical gradient."""
    distance = cv2.distanceTransform(body.astype(np.uint8), cv2.DIST_L2, 3)[raster]
    shade = 1.0 + rng.uniform(-0.35, 0.1) * np.exp(-distance / rng.uniform(2.0, 5.0))
    for _ in range(rng.integers(1, 3)):
        fold_v = rng.uniform(p.top_v + 4.0, p.bottom_v - 4.0)
        shade += rng.uniform(-0.12, 0.12) * np.exp(-((v - fold_v) / rng.uniform(1.5, 4.0)) ** 2)
    shade += rng.uniform(-0.1, 0.1) * (v - p.top_v) / (p.bottom_v - p.top_v)
    return shade


def _crease_map(shape: MaskShape, p: Placement, frame: FaceFrame, size: int) -> np.ndarray:
    """float32 HxW in [0, 1]: antialiased pleat and seam lines."""
    creases = np.zeros((size, size), np.float32)
    lines = [_edge((-p.half_width, v), (p.half_width, v), 1.0, 5) for v in shape.pleats] + shape.seams
    if lines:
        cv2.polylines(creases, [_fixed_point(_place(line, p, frame)) for line in lines], False, 1.0,
                      1, cv2.LINE_AA, SUBPIXEL_BITS)
    return creases


def _paint(style: str, shape: MaskShape, p: Placement, frame: FaceFrame, raster: np.ndarray,
           straps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float32 (count, 3): the colours of the raster's pixels, in raster order."""
    size = raster.shape[0]
    xs, ys = _pixel_grid(size)
    # Work on the mask pixels only (a fifth of the frame): the cost is in per-pixel arithmetic.
    u, v = frame.to_uv(xs[raster], ys[raster])
    base = _base_colour(style, rng)
    second = np.clip(base + rng.choice([-1, 1]) * rng.uniform(40, 110, 3), 0, 255).astype(np.float32)
    weight = _pattern(PATTERNS[rng.integers(len(PATTERNS))], u, v, rng, raster) * rng.uniform(0.4, 1.0)
    colour = base + weight[:, None] * (second - base)

    shade = _shading(raster & ~straps, raster, v, p, rng)
    shade *= 1.0 - 0.3 * _crease_map(shape, p, frame, size)[raster]
    colour *= shade[:, None]
    colour[straps[raster]] = base * 0.85  # ear loops: plain, a little darker than the body
    return colour


# --- entry point ------------------------------------------------------------------------------

def _light_from_face(image: np.ndarray, raster: np.ndarray, colour: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """The face's own light on the mask: colours times the face's low-frequency brightness under
    the mask relative to its mean there (the side in shadow stays in shadow), and the outline's
    pixels blended with what lies beneath (a soft edge). Returns the new colours, raster order."""
    luminance = image.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
    light = cv2.GaussianBlur(luminance, (0, 0), rng.uniform(4.0, 8.0))[raster]
    relative = np.clip(light / max(float(light.mean()), 8.0), 0.35, 1.8) ** rng.uniform(0.4, 1.0)
    colour = colour * relative[:, None]
    edge = (raster & ~cv2.erode(raster.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool))[raster]
    below = image[raster].astype(np.float32)
    mix = rng.uniform(0.3, 0.5)
    colour[edge] = (1 - mix) * colour[edge] + mix * below[edge]
    return colour


def render_mask(image: np.ndarray, rng: np.random.Generator, landmarks5: np.ndarray | None = None,
                style: str | None = None, lit: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Paint a synthetic mask on an aligned face.

    image: uint8 HxWx3 RGB (square; 112 for the ArcFace frame); landmarks5: (5, 2) in image
    pixels, the ArcFace template by default; style: one of STYLES, random if None.
    Returns (masked image uint8 HxWx3, region map uint8 HxW: 0 face, 1 mask, 2 background).
    Mask pixels are exactly the rasterised outline (plus ear loops) that was painted; every other
    pixel is left untouched. Unlit (the default), mask colours do not depend on the input pixels;
    `lit` shades them with the face's own light and softens the outline against what lies beneath
    (the region map is the same as unlit with the same rng).
    """
    size = image.shape[0]
    if landmarks5 is None:
        landmarks5 = TEMPLATE_LANDMARKS * (size / FRAME_SIZE)
    style = style if style is not None else list(STYLES)[rng.integers(len(STYLES))]
    frame = FaceFrame.from_landmarks(landmarks5)
    placement = _sample_placement(rng, frame)
    shape = STYLES[style](placement, rng)
    raster, straps = _rasterise(shape, placement, frame, size, strap_thickness=1 + (style == "cloth"))
    colour = _paint(style, shape, placement, frame, raster, straps, rng)
    if lit:
        colour = _light_from_face(image, raster, colour, rng)

    masked = image.copy()
    masked[raster] = np.clip(colour + 0.5, 0, 255).astype(np.uint8)
    regions = np.full((size, size), FACE, np.uint8)
    regions[~face_prior_mask(size)] = BACKGROUND
    regions[raster] = MASK
    return masked, regions
