"""Real masked photos: the split, the measures, the identity loss and the real batches."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import DATA_DIR
from maskface_train import distill, realmasks
from maskface_train.augment import web_augment
from maskface_train.mfsa import MFSA


def fake_set(identities, masked, failures=()):
    n = len(identities)
    crops = np.zeros((n, 112, 112, 3), np.uint8)
    crops[:, 0, 0, 0] = np.arange(n)          # the fake embedder reads the row back from here
    return realmasks.RealMaskedSet(crops, crops.copy(), list(identities), np.array(masked, bool),
                                   [f"{who}/{'masked' if m else 'unmasked'}-{i}.jpg"
                                    for i, (who, m) in enumerate(zip(identities, masked))], list(failures))


def embedder(vectors):
    vectors = np.asarray(vectors, np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return lambda images: vectors[images[:, 0, 0, 0].astype(int)]


@pytest.mark.skipif(not (DATA_DIR / realmasks.FOLDER).exists(), reason="rmfrd_real_masks is missing")
def test_the_split_is_by_identity_and_train_never_holds_a_val_identity():
    train, val = realmasks.split_identities("train"), realmasks.split_identities("val")
    assert len(train) == 381 and len(val) == 80 and not set(train) & set(val)
    with pytest.raises(ValueError, match="split"):
        realmasks.split_identities("test")


def test_measure_separates_people_and_counts_photos_without_a_face_as_misses():
    # Two people; masked photos point at their own person's bare photos, one masked photo of a
    # third direction lands nowhere near either.
    who = ["a", "a", "a", "b", "b", "b"]
    masked = [True, False, False, True, False, False]
    vectors = [[1, 0.1, 0], [1, 0, 0], [1, 0.05, 0], [0, 1, 0.1], [0, 1, 0], [0.05, 1, 0]]
    data = fake_set(who, masked, failures=["a/masked-9.jpg"])
    result = realmasks.measure(data, embedder(vectors))
    m, b = result["masked_vs_bare"], result["bare_vs_bare"]
    assert m["auc"] == 1.0 and m["genuine"] == 4 and m["impostor"] == 4
    assert m["rank1"] == pytest.approx(2 / 3)        # the photo without a face is a miss
    assert b["auc"] == 1.0 and b["rank1"] == 1.0 and b["genuine"] == 2 and b["impostor"] == 4

    swapped = realmasks.measure(data, embedder([vectors[3], *vectors[1:3], vectors[0], *vectors[4:]]))
    assert swapped["masked_vs_bare"]["auc"] == 0.0 and swapped["masked_vs_bare"]["rank1"] == 0.0


def test_prototypes_come_from_bare_photos_only():
    data = fake_set(["a", "a", "b", "c"], [True, False, False, True])
    targets = np.zeros((4, 2, 3), np.float32)
    targets[0] = [0, 0, 1]     # a masked photo's teacher embedding must not count
    targets[1] = [1, 0, 0]
    targets[2] = [0, 1, 0]
    targets[3] = [0, 0, 1]
    prototypes, row_of = distill.identity_prototypes(data, targets)
    np.testing.assert_allclose(prototypes, [[1, 0, 0], [0, 1, 0]])
    assert row_of.tolist() == [0, 0, 1, -1]          # c has no bare photo: no prototype


def test_identity_loss_falls_toward_the_right_prototype_and_skips_unlabelled_rows():
    prototypes = torch.eye(4)
    labels = torch.tensor([0, -1])
    right = distill.identity_loss(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]), prototypes, labels, 30, 0.2)
    wrong = distill.identity_loss(torch.tensor([[0, 1.0, 0, 0], [0, 1.0, 0, 0]]), prototypes, labels, 30, 0.2)
    assert float(right) < 0.01 < 10 < float(wrong)
    # The margin: an embedding exactly on its prototype still has a loss when the others are close.
    close = torch.nn.functional.normalize(torch.tensor([[1.0, 0.9, 0, 0]]), dim=1)
    assert float(distill.identity_loss(close, prototypes, torch.tensor([0]), 30, 0.2)) > \
        float(distill.identity_loss(close, prototypes, torch.tensor([0]), 30, 0.0))
    assert float(distill.identity_loss(torch.ones(2, 4), prototypes, torch.tensor([-1, -1]), 30, 0.2)) == 0.0


def test_real_batches_draw_masked_photos_with_a_prototype_and_no_region_labels():
    data = fake_set(["a", "a", "b", "b", "c"], [True, False, True, False, True])
    targets = np.random.default_rng(0).normal(size=(5, 2, 8)).astype(np.float32)
    _, row_of = distill.identity_prototypes(data, targets)
    config = replace(distill.DistillConfig(), real_per_batch=64, real_masked_share=0.5)
    batches = distill.RealBatches(data, targets, row_of, config)
    inputs, labels, target, masked, proto = batches.sample(np.random.default_rng(1))
    assert inputs.shape == (64, 3, 112, 112) and target.shape == (64, 8)
    assert (labels == -100).all()
    assert 10 < int(masked.sum()) < 54
    assert set(proto[masked].tolist()) <= {0, 1}      # c's masked photo has no prototype: never drawn
    assert set(proto[~masked].tolist()) <= {0, 1}


def test_web_augment_is_deterministic_per_seed_and_keeps_geometry_when_asked():
    image = np.zeros((112, 112, 3), np.uint8)
    image[40:60, 50:70] = 200
    a = web_augment(image, np.random.default_rng(3))
    b = web_augment(image, np.random.default_rng(3))
    assert a.dtype == np.uint8 and a.shape == image.shape and np.array_equal(a, b)
    for seed in range(20):
        out = web_augment(image, np.random.default_rng(seed), geometric=False).astype(int).sum(2)
        inside, outside = out[45:55, 55:65].mean(), out[np.ix_(range(0, 30), range(0, 112))].mean()
        assert inside > outside + 100, seed


def test_detached_region_features_keep_the_region_loss_out_of_the_backbone():
    torch.manual_seed(0)
    for detach, expect_grad in ((True, False), (False, True)):
        conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        module = MFSA(8, detach_features=detach)
        features = conv(torch.randn(2, 3, 14, 14))
        _, logits = module(features)
        torch.nn.functional.cross_entropy(logits, torch.ones(2, 14, 14, dtype=torch.long)).backward()
        assert (conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0) == expect_grad
        assert module.classify.weight.grad.abs().sum() > 0


@pytest.mark.skipif(not (DATA_DIR / realmasks.FOLDER / "axin").exists(), reason="rmfrd_real_masks is missing")
def test_the_runtime_aligns_photos_twice_and_marks_those_without_a_face(tmp_path):
    from maskface_train.import_onnx import REPO_ROOT
    if not (REPO_ROOT / "dist" / "esm" / "index.js").exists():
        pytest.skip("the Node package is not built (npm install)")
    photos = [DATA_DIR / realmasks.FOLDER / "axin" / "masked-c01.jpg",
              REPO_ROOT / "test" / "fixtures" / "no-face.png",
              DATA_DIR / realmasks.FOLDER / "axin" / "unmasked-c01.jpg"]
    realmasks._align_with_runtime(photos, tmp_path / "out")
    meta = json.loads((tmp_path / "out.json").read_text())
    crops = np.fromfile(tmp_path / "out.u8", np.uint8).reshape(3, 2, 112, 112, 3)
    assert meta["found"] == [True, False, True]
    assert crops[1].max() == 0
    for i in (0, 2):
        assert crops[i, 0].std() > 20 and crops[i, 1].std() > 20
        # Five points and the eyes and nose give different warps of the same face.
        assert np.abs(crops[i, 0].astype(int) - crops[i, 1]).mean() > 1
        assert len(meta["landmarks5"][i]) == 10
