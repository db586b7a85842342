"""Synthetic mask renderer: exact labels, geometry relative to the landmarks, determinism."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from maskface_train.masks import (FACE_PRIOR, STYLES, TEMPLATE_LANDMARKS, face_prior_mask,
                                  render_mask)
from maskface_train.mfsa import BACKGROUND, FACE, MASK

SEEDS = range(40)
LEFT_EYE, RIGHT_EYE, NOSE, LEFT_MOUTH, RIGHT_MOUTH = (tuple(np.round(p).astype(int)) for p in TEMPLATE_LANDMARKS)
EYE_LINE_Y = TEMPLATE_LANDMARKS[:2, 1].max()


def sentinel(rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.uint8(rgb), (112, 112, 3)).copy()


def render(style: str, seed: int, image: np.ndarray | None = None):
    image = sentinel((3, 250, 7)) if image is None else image
    return render_mask(image, np.random.default_rng(seed), style=style)


def at(regions: np.ndarray, xy: tuple[int, int]) -> int:
    return int(regions[xy[1], xy[0]])


@pytest.mark.parametrize("style", STYLES)
def test_mask_pixels_are_exactly_the_painted_pixels(style):
    # Two sentinel inputs: a mask pixel could match one sentinel by chance, never both.
    first, second = sentinel((3, 250, 7)), sentinel((250, 3, 251))
    for seed in SEEDS:
        out_first, regions = render(style, seed, first)
        out_second, regions_second = render(style, seed, second)
        changed = (out_first != first).any(-1) | (out_second != second).any(-1)
        np.testing.assert_array_equal(changed, regions == MASK)
        np.testing.assert_array_equal(regions, regions_second)  # labels ignore the pixels


@pytest.mark.parametrize("style", STYLES)
def test_mask_covers_mouth_and_spares_the_eyes(style):
    for seed in SEEDS:
        _, regions = render(style, seed)
        assert at(regions, LEFT_MOUTH) == MASK and at(regions, RIGHT_MOUTH) == MASK, seed
        assert at(regions, LEFT_EYE) != MASK and at(regions, RIGHT_EYE) != MASK, seed
        mask_rows = np.nonzero((regions == MASK).any(axis=1))[0]
        assert mask_rows.min() > EYE_LINE_Y, (seed, mask_rows.min())
        # Top edge between the eyes and the nose tip: the nose's lower neighbourhood is covered.
        assert at(regions, (NOSE[0], NOSE[1] + 2)) == MASK, seed


@pytest.mark.parametrize("style", STYLES)
def test_region_classes_follow_the_prior(style):
    prior = face_prior_mask()
    for seed in SEEDS:
        _, regions = render(style, seed)
        assert set(np.unique(regions)) <= {FACE, MASK, BACKGROUND}
        assert not (regions[prior] == BACKGROUND).any()
        np.testing.assert_array_equal(regions[~prior] != MASK, regions[~prior] == BACKGROUND)
        mask_top = np.nonzero((regions == MASK).any(axis=1))[0].min()
        assert (regions[:mask_top] == FACE).any()


@pytest.mark.parametrize("style", STYLES)
def test_all_classes_survive_resizing_to_28(style):
    for seed in SEEDS:
        _, regions = render(style, seed)
        small = F.interpolate(torch.from_numpy(regions)[None, None].float(), size=(28, 28),
                              mode="nearest-exact")
        assert set(small.unique().int().tolist()) == {FACE, MASK, BACKGROUND}


def test_deterministic_per_seed_and_varied_across_seeds():
    face = np.random.default_rng(123).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    first = render_mask(face, np.random.default_rng(7))
    again = render_mask(face, np.random.default_rng(7))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    outputs = [render_mask(face, np.random.default_rng(seed)) for seed in range(20)]
    assert len({out.tobytes() for out, _ in outputs}) == 20
    assert len({regions.tobytes() for _, regions in outputs}) == 20


def test_input_is_not_modified_and_dtype_shape_kept():
    face = sentinel((10, 20, 30))
    out, regions = render_mask(face, np.random.default_rng(0))
    assert (face == np.uint8([10, 20, 30])).all()
    assert out.dtype == np.uint8 and out.shape == face.shape
    assert regions.dtype == np.uint8 and regions.shape == (112, 112)


def test_follows_rotated_and_scaled_landmarks():
    # A face rolled by 15 degrees and shrunk to 0.8 about the frame centre: the mask follows it.
    angle, scale, centre = np.deg2rad(15), 0.8, np.float32([56, 56])
    rotation = scale * np.float32([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = (TEMPLATE_LANDMARKS - centre) @ rotation.T + centre
    for style in STYLES:
        for seed in range(10):
            _, regions = render_mask(sentinel((0, 0, 0)), np.random.default_rng(seed), landmarks, style)
            corners = np.round(landmarks).astype(int)
            assert all(regions[y, x] == MASK for x, y in corners[3:]), (style, seed)
            assert all(regions[y, x] != MASK for x, y in corners[:2]), (style, seed)


def test_prior_contains_the_landmarks_and_scales():
    prior = face_prior_mask()
    assert all(prior[y, x] for x, y in np.round(TEMPLATE_LANDMARKS).astype(int))
    assert prior[round(FACE_PRIOR.centre_y), round(FACE_PRIOR.centre_x)] and not prior[0, 0]
    assert face_prior_mask(224).sum() == pytest.approx(4 * prior.sum(), rel=0.02)


def test_fast_enough():
    face, rng = sentinel((90, 90, 90)), np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(200):
        render_mask(face, rng)
    per_face = (time.perf_counter() - start) / 200
    assert per_face < 0.005, f"{per_face * 1e3:.2f} ms per face"  # ~1.5 ms here; slack for busy CI


@pytest.mark.parametrize("style", STYLES)
def test_lit_masks_follow_the_face_light_and_keep_the_labels(style):
    # A face lit from the right: brightness rises left to right.
    ramp = np.linspace(40, 230, 112, dtype=np.float32)
    face = np.repeat(np.repeat(ramp[None, :, None], 112, axis=0), 3, axis=2).astype(np.uint8)
    gains = []
    for seed in SEEDS:
        plain, regions = render_mask(face, np.random.default_rng(seed), style=style)
        lit, lit_regions = render_mask(face, np.random.default_rng(seed), style=style, lit=True)
        np.testing.assert_array_equal(lit_regions, regions)                      # the same raster
        outside = regions != MASK
        np.testing.assert_array_equal(lit[outside], face[outside])               # nothing else touched
        mask = regions == MASK
        xs = np.nonzero(mask)[1]
        right, left = xs > 60, xs < 52
        luminance = lambda img: img[mask].astype(np.float32).mean(1)
        # Relative to the unlit paint, the right side of a lit mask is brighter than its left.
        ratio = (luminance(lit) + 1) / (luminance(plain) + 1)
        gains.append(ratio[right].mean() / ratio[left].mean())
    assert np.median(gains) > 1.2
