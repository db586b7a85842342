"""Real-mask cut-outs: the cut follows the mask's edge, bad maps are rejected by reason, and a
paste puts the mask class exactly on the pasted pixels, where the face's landmarks say."""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from maskface_train import distill, maskbank
from maskface_train.masks import MASK, TEMPLATE_LANDMARKS

SKIN = (205, 160, 130)
CLOTH = (30, 60, 160)


def photo_with_mask(top: int = 66, bottom: int = 106, left: int = 22, right: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """A skin-coloured frame with a noisy blue trapezoid over the nose and mouth, and its truth."""
    rng = np.random.default_rng(0)
    image = np.empty((112, 112, 3), np.float32)
    image[:] = SKIN
    truth = np.zeros((112, 112), np.uint8)
    polygon = np.array([[left + 6, top], [right - 6, top], [right, bottom], [left, bottom]], np.int32)
    cv2.fillPoly(truth, [polygon], 1)
    image[truth == 1] = CLOTH
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), truth.astype(bool)


def coarse_map(truth: np.ndarray) -> np.ndarray:
    """What a 28x28 region map gives: the truth at a quarter of the resolution, upsampled."""
    small = cv2.resize(truth.astype(np.float32), (28, 28), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (112, 112), interpolation=cv2.INTER_LINEAR)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


def test_the_cut_follows_the_real_edge_better_than_the_coarse_map():
    image, truth = photo_with_mask()
    probability = coarse_map(truth)
    alpha, reason = maskbank.cut_out(image, probability)
    assert reason == "ok"
    cut = alpha >= 128
    assert iou(cut, truth) > 0.95
    assert iou(cut, truth) > iou(probability > 0.5, truth)
    # Soft edge: some pixels are neither 0 nor 255, only next to the boundary.
    soft = (alpha > 0) & (alpha < 255)
    assert soft.any()
    assert cv2.dilate(cv2.Canny(truth.astype(np.uint8) * 255, 50, 150), np.ones((5, 5), np.uint8))[soft].all()


@pytest.mark.parametrize("geometry, reason", [
    ({"top": 40}, "reaches the eyes"),
    ({"top": 96, "bottom": 104, "left": 50, "right": 66}, "area out of range"),
    ({"top": 58, "bottom": 75, "left": 10, "right": 102}, "misses the mouth or nose"),
])
def test_maps_that_are_not_a_mask_on_the_lower_face_are_rejected(geometry, reason):
    image, truth = photo_with_mask(**geometry)
    # Above the eye line the trimap is forced to background: a cut that still touches the rows
    # just below it was cut off there, so the mask it belongs to covers the eyes.
    alpha, why = maskbank.cut_out(image, coarse_map(truth))
    assert alpha is None and why == reason


def test_no_confident_pixel_is_rejected():
    image, truth = photo_with_mask()
    alpha, why = maskbank.cut_out(image, coarse_map(truth) * 0.6)
    assert alpha is None and why == "no confident mask pixel"


def interior(region: np.ndarray) -> np.ndarray:
    """Pixels 2 or more pixels inside `region`, counting the frame's edge as outside."""
    return cv2.erode(region.astype(np.uint8), np.ones((5, 5), np.uint8), borderType=cv2.BORDER_CONSTANT,
                     borderValue=0).astype(bool)


def one_cutout_bank() -> maskbank.MaskBank:
    image, truth = photo_with_mask()
    alpha, _ = maskbank.cut_out(image, coarse_map(truth))
    source = np.empty_like(image)
    source[:] = (20, 220, 20)
    return maskbank.MaskBank(source[None], alpha[None], ["p/masked_1.jpg"])


def test_a_paste_labels_exactly_the_pasted_pixels(monkeypatch):
    monkeypatch.setattr(maskbank, "RECOLOUR_PROBABILITY", 0.0)
    bank = one_cutout_bank()
    face = np.empty((112, 112, 3), np.uint8)
    face[:] = (200, 50, 50)
    for seed in range(10):
        masked, regions = maskbank.paste_real_mask(face, bank, np.random.default_rng(seed))
        is_mask = regions == MASK
        assert 0.5 < is_mask.sum() / bank.alpha[0].astype(bool).sum() < 1.5
        inner = interior(is_mask)
        outer = ~cv2.dilate(is_mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        assert (masked[inner, 1] >= 150).all()                       # the cut-out's colour, not the face's
        assert (masked[outer] == face[outer]).all()                  # everything else untouched


def test_a_paste_follows_the_face_landmarks(monkeypatch):
    monkeypatch.setattr(maskbank, "RECOLOUR_PROBABILITY", 0.0)
    bank = one_cutout_bank()
    face = np.zeros((112, 112, 3), np.uint8)
    centres = []
    for shift in (0.0, 10.0):
        xs = []
        for seed in range(12):
            _, regions = maskbank.paste_real_mask(face, bank, np.random.default_rng(seed),
                                                  landmarks5=TEMPLATE_LANDMARKS + [shift, 0])
            xs.append(np.nonzero(regions == MASK)[1].mean())
        centres.append(np.mean(xs))
    assert 8.0 < centres[1] - centres[0] < 12.0


def test_recolouring_keeps_the_texture():
    rng = np.random.default_rng(3)
    pixels = np.zeros((112, 112, 3), np.float32) + 40
    pixels[60:, ::4] = 80                                        # a pleat pattern
    inside = np.zeros((112, 112), bool)
    inside[60:] = True
    out = maskbank._recolour(pixels, inside, rng)
    luminance = out[60:].mean(2)
    assert np.corrcoef(luminance.ravel(), pixels[60:, :, 0].ravel())[0, 1] > 0.99
    assert not np.allclose(out[60:, 1], out[60:, 0] * 0 + out[60, 1, 0])  # a new colour


def test_real_mask_paste_without_a_bank_is_refused():
    config = distill.DistillConfig(real_mask_paste=0.5)
    crops = np.zeros((2, 112, 112, 3), np.uint8)
    with pytest.raises(ValueError, match="mask bank"):
        distill.MaskedBatches(crops, np.tile(TEMPLATE_LANDMARKS, (2, 1, 1)), np.zeros((2, 2, 512), np.float32), config)


def test_batches_use_the_cut_outs(monkeypatch):
    monkeypatch.setattr(maskbank, "RECOLOUR_PROBABILITY", 0.0)
    config = replace(distill.DistillConfig(), batch_size=8, mask_probability=1.0, real_mask_paste=1.0,
                     flip=False, augment=0.0)
    crops = np.zeros((4, 112, 112, 3), np.uint8)
    batches = distill.MaskedBatches(crops, np.tile(TEMPLATE_LANDMARKS, (4, 1, 1)),
                                    np.zeros((4, 2, 512), np.float32), config, one_cutout_bank())
    inputs, labels, _, masked, _ = batches.sample(np.random.default_rng(0))
    assert masked.all()
    pixels = inputs.numpy().transpose(0, 2, 3, 1) * distill.STD + distill.MEAN
    for image, regions in zip(pixels, labels.numpy()):
        inner = interior(regions == MASK)
        assert inner.sum() > 500 and (image[inner, 1] >= 150).all()   # green cut-out, not a painted mask
