"""Evaluation metrics against brute-force definitions, and the runtime's lower-face region."""
from __future__ import annotations

import numpy as np

from maskface_train import evaluate


def brute_auc(genuine, impostor):
    g, i = np.asarray(genuine)[:, None], np.asarray(impostor)[None]
    return float((g > i).mean() + 0.5 * (g == i).mean())


def test_auc_matches_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    genuine = np.round(rng.normal(0.6, 0.2, 300), 2)   # rounding makes ties
    impostor = np.round(rng.normal(0.2, 0.2, 500), 2)
    assert abs(evaluate.auc(genuine, impostor) - brute_auc(genuine, impostor)) < 1e-12
    assert evaluate.auc(np.array([1.0, 2.0]), np.array([0.0])) == 1.0
    assert evaluate.auc(np.array([0.0]), np.array([1.0, 2.0])) == 0.0


def test_eer_where_the_error_rates_cross():
    genuine = np.arange(10, 20) / 20.0   # 0.50 .. 0.95
    impostor = np.arange(0, 12) / 20.0   # 0.00 .. 0.55: two impostors overlap the genuine range
    # At threshold 0.55: FRR = 1/10 (0.50 rejected), FAR = 1/12 (0.55 accepted).
    assert abs(evaluate.eer(genuine, impostor) - (0.1 + 1 / 12) / 2) < 1e-12
    assert evaluate.eer(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 0.0


def test_tar_at_far_lets_through_at_most_that_many_impostors():
    impostor = np.linspace(0, 1, 1000)
    genuine = np.array([0.9992, 0.9985, 0.5])
    # FAR 1e-3 allows one impostor above the threshold: the 2nd highest (0.998999) is the threshold
    assert evaluate.tar_at_far(genuine, impostor, 1e-3) == 1 / 3
    # FAR 1e-2 allows 10: threshold ~0.98999
    assert evaluate.tar_at_far(genuine, impostor, 1e-2) == 2 / 3
    assert evaluate.tar_at_far(genuine, impostor, 0.6) == 1.0


def test_rank1_uses_the_first_image_of_each_identity_as_gallery():
    labels = np.array([0, 0, 1, 1, 1])
    vectors = np.eye(5)
    vectors[1] = vectors[0]            # image 1 matches identity 0's gallery image
    vectors[3] = vectors[0]            # image 3 (identity 1) also matches identity 0: a miss
    vectors[4] = vectors[2]
    assert evaluate.rank1(vectors, vectors, labels) == 2 / 3


def test_lower_face_cells_are_inside_the_prior_and_below_the_nose():
    cells = evaluate.lower_face_cells(28)
    rows, cols = np.nonzero(cells)
    assert rows.min() == 18          # first row whose centre (4i + 1.5) is >= 72
    assert cells.sum() > 100
    assert not cells[:, 0].any() and not cells[:, -1].any()  # the prior is narrower than the frame
    assert cells[18:27, 13:15].all()                          # mouth and chin on the centre line


def test_region_iou_is_one_for_a_perfect_map():
    labels = np.zeros((2, 112, 112), np.uint8)
    labels[:, 80:, 20:90] = 1
    labels[:, :, :8] = 2
    from maskface_train.losses import resize_labels
    import torch
    small = resize_labels(torch.from_numpy(labels.astype(np.int64)), (28, 28)).numpy()
    probabilities = np.eye(3, dtype=np.float32)[small].transpose(0, 3, 1, 2)
    iou = evaluate.region_iou(probabilities, labels)
    assert iou == {"iou_face": 1.0, "iou_mask": 1.0, "iou_background": 1.0}
    wrong = probabilities[:, [1, 0, 2]]   # face and mask swapped
    assert evaluate.region_iou(wrong, labels)["iou_mask"] == 0.0


def test_evaluate_model_reports_every_metric(fr_feature):
    from maskface_train.masks import TEMPLATE_LANDMARKS, render_mask
    from maskface_train.mfsa import MaskFaceNet

    rng = np.random.default_rng(5)
    clean = rng.integers(0, 256, size=(6, 112, 112, 3), dtype=np.uint8)
    masked, regions = zip(*(render_mask(face, np.random.default_rng(i), TEMPLATE_LANDMARKS)
                            for i, face in enumerate(clean)))
    labels = np.array([0, 0, 1, 1, 2, 2])
    i, j = np.triu_indices(6, k=1)
    data = evaluate.EvalData(clean, np.stack(masked), np.stack(regions), labels, np.zeros(6, int),
                             np.stack([i, j, (labels[i] == labels[j]).astype(int)], axis=1), 0)
    plain = evaluate.evaluate_model("fr_feature", fr_feature, data)
    assert "regions" not in plain
    for section in ("masked", "unmasked"):
        assert set(plain[section]) == {"auc", "eer", "tar@1e-2", "tar@1e-3", "rank1", "auc_lfw"}
        assert all(0.0 <= v <= 1.0 for v in plain[section].values())
    student = MaskFaceNet(fr_feature, gating="not_mask").eval()
    row = evaluate.evaluate_model("student", student, data, real_masked=clean[:2])
    assert set(row["regions"]) == {"iou_face", "iou_mask", "iou_background", "mask_probability_synthetic",
                                   "mask_probability_clean", "clean_above_half", "mask_probability_rwmfd",
                                   "rwmfd_above_half"}
    # Near-identity attention at initialisation: nothing is called a mask yet.
    assert row["regions"]["mask_probability_synthetic"] < 0.01
