"""Distillation mode: a tiny run logs, checkpoints, exports, and resumes to the same weights."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import DATA_DIR
from maskface_train import distill, realmasks


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, fr_feature_path):
    if not (DATA_DIR / "faceapi_bbt").exists():
        pytest.skip("faceapi_bbt is missing (set MASKFACE_DATA_DIR)")
    cache = tmp_path_factory.mktemp("cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("MASKFACE_CACHE_DIR", str(cache))
    yield distill.DistillConfig(train_sets=("bbt",), limit_per_set=12, steps=4, batch_size=4,
                                checkpoint_every=2, threads=2)
    patch.undo()


def weights(model: torch.nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_flipped_landmarks_follow_the_mirrored_crop(tiny):
    crops, points = distill.load_training_crops(tiny)
    targets = np.zeros((len(crops), 2, 512), np.float32)
    batches = distill.MaskedBatches(crops, points, targets, replace(tiny, mask_probability=1.0))
    inputs, labels, _, masked, _ = batches.sample(np.random.default_rng(1))
    assert masked.all() and inputs.shape == (4, 3, 112, 112) and labels.shape == (4, 112, 112)
    # Whatever the flip, the mask sits on the lower face: mask pixels mostly below the nose line.
    rows = np.nonzero((labels == 1).numpy())[1]
    assert (rows >= 60).mean() > 0.9


def test_a_tiny_run_trains_logs_exports_and_resumes_exactly(tiny, tmp_path):
    straight = tmp_path / "straight"
    path = distill.train(tiny, straight, export=True)
    assert path.is_file() and path.stat().st_size > 4_000_000
    log = [json.loads(line) for line in (straight / "losses.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2, 3, 4]
    assert all(np.isfinite(entry["total"]) for entry in log)

    # Leave after step 3 as an interrupted run would, then rerun the same command: it resumes.
    resumed = tmp_path / "resumed"
    assert distill.train(tiny, resumed, export=False, stop_at=3) is None
    assert not (resumed / "student.pt").exists()
    distill.train(tiny, resumed, export=False)
    log = [json.loads(line)["step"] for line in (resumed / "losses.jsonl").read_text().splitlines()]
    assert log == [1, 2, 3, 4]

    a = torch.load(straight / "student.pt")
    b = torch.load(resumed / "student.pt")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def test_a_run_folder_refuses_another_configuration(tiny, tmp_path):
    distill.train(replace(tiny, steps=1), tmp_path / "run", export=False)
    with pytest.raises(ValueError, match="steps"):
        distill.train(replace(tiny, steps=2), tmp_path / "run", export=False)


def test_a_tiny_run_with_real_masked_photos_logs_every_loss(tiny, tmp_path, monkeypatch):
    # Real photos stand in from the same crops (half of them "masked"), so this needs no
    # rmfrd alignment; what is checked is the wiring of the real batches and the identity loss.
    crops, _ = distill.load_training_crops(tiny)
    who = [f"p{i % 3}" for i in range(len(crops))]
    fake = realmasks.RealMaskedSet(crops, crops[:, :, ::-1].copy(), who, np.arange(len(crops)) % 2 == 0,
                                   [f"{w}/x{i}.jpg" for i, w in enumerate(who)], [])
    monkeypatch.setattr(realmasks, "load_rmfrd", lambda split: fake if split == "train" else pytest.fail(split))
    config = replace(tiny, steps=2, real_per_batch=4, lambda_identity=1.0, lambda_pull=1.0, augment=0.5,
                     detach_region_features=True)
    distill.train(config, tmp_path / "run", export=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "losses.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2]
    for entry in log:
        assert entry["identity"] > 0 and np.isfinite(entry["total"]) and np.isfinite(entry["region"])
    assert distill.load_student(tmp_path / "run").mfsa["1"].detach_features is True


def test_identity_loss_without_real_photos_is_refused(tiny, tmp_path):
    for weights in ({"lambda_identity": 1.0}, {"lambda_pull": 1.0}):
        with pytest.raises(ValueError, match="real_per_batch"):
            distill.train(replace(tiny, **weights), tmp_path / "run", export=False)


def test_a_run_from_before_an_option_existed_resumes_with_its_default(tiny, tmp_path):
    distill.train(replace(tiny, steps=1), tmp_path / "run", export=False)
    config_path = tmp_path / "run" / "config.json"
    older = json.loads(config_path.read_text())
    del older["real_mask_paste"]
    config_path.write_text(json.dumps(older))
    distill.train(replace(tiny, steps=1), tmp_path / "run", export=False)   # the default: same run
    with pytest.raises(ValueError, match="real_mask_paste"):
        distill.train(replace(tiny, steps=1, real_mask_paste=0.5), tmp_path / "run", export=False)
