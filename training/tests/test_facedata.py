"""Face alignment for training data: the similarity fit, the 5 points, real photos, the cache."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import DATA_DIR
from maskface_train import facedata
from maskface_train.masks import TEMPLATE_LANDMARKS


def test_umeyama_recovers_a_known_similarity():
    rng = np.random.default_rng(3)
    source = rng.uniform(0, 200, size=(5, 2))
    angle, scale, shift = 0.3, 0.7, np.array([12.0, -5.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = source @ (scale * rotation).T + shift
    matrix = facedata.umeyama(source, target)
    np.testing.assert_allclose(matrix[:, :2], scale * rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-7)


def test_umeyama_never_reflects():
    source = TEMPLATE_LANDMARKS.astype(np.float64)
    mirrored = source * [-1, 1]
    matrix = facedata.umeyama(source, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_five_points_are_eye_centres_nose_tip_and_mouth_corners():
    points = np.zeros((68, 2))
    points[[37, 38, 40, 41]] = [[1, 0], [3, 0], [3, 2], [1, 2]]
    points[[43, 44, 46, 47]] = [[11, 0], [13, 0], [13, 2], [11, 2]]
    points[30] = [7, 5]
    points[[48, 60]] = [[2, 9], [4, 9]]
    points[[54, 64]] = [[12, 9], [10, 9]]
    np.testing.assert_allclose(facedata.five_points(points), [[2, 1], [12, 1], [7, 5], [3, 9], [11, 9]])


@pytest.fixture(scope="module")
def aligner():
    try:
        return facedata.FaceAligner()
    except FileNotFoundError as error:
        pytest.skip(str(error))


def test_no_face_in_a_blank_image(aligner):
    assert aligner.align(np.full((240, 320, 3), 128, np.uint8)) is None


def test_a_real_photo_lands_on_the_template(aligner):
    photo = DATA_DIR / "deepface_testset" / "img1.jpg"
    if not photo.exists():
        pytest.skip(f"{photo} is missing (set MASKFACE_DATA_DIR)")
    face = aligner.align(facedata.read_rgb(photo))
    assert face is not None and face.score > 0.9 and not face.padded
    assert face.crop.shape == (112, 112, 3) and face.crop.dtype == np.uint8
    # The fitted 5 points sit within a few pixels of the template (a similarity cannot fit exactly).
    error = np.linalg.norm(facedata.five_points(face.landmarks68) - TEMPLATE_LANDMARKS, axis=1)
    assert error.max() < 6, error


def test_tight_crops_are_found_inside_the_border(aligner):
    folder = DATA_DIR / "lfw_aligned_100pair"
    if not folder.exists():
        pytest.skip(f"{folder} is missing (set MASKFACE_DATA_DIR)")
    image = facedata.read_rgb(next(iter(sorted(folder.glob("*/*.jpg")))))
    face = aligner.align(image, tight=True)
    assert face is not None and face.padded and face.score > 0
    error = np.linalg.norm(facedata.five_points(face.landmarks68) - TEMPLATE_LANDMARKS, axis=1)
    assert error.max() < 6, error


def test_load_set_caches_and_counts(aligner, tmp_path, monkeypatch):
    if not (DATA_DIR / "faceapi_bbt").exists():
        pytest.skip("faceapi_bbt is missing (set MASKFACE_DATA_DIR)")
    monkeypatch.setenv("MASKFACE_CACHE_DIR", str(tmp_path))
    first = facedata.load_set("bbt", aligner=aligner, limit=6, progress=False)
    assert len(first.files) + len(first.failures) == 6
    assert first.crops.shape == (len(first.files), 112, 112, 3)
    assert first.landmarks68.shape == (len(first.files), 68, 2)
    assert list(first.labels()) == sorted(first.labels())  # labels.csv lists amy's images first
    cached = list((tmp_path / "training").glob("bbt-*.npz"))
    assert len(cached) == 1

    class Refuses:
        def align(self, *args, **kwargs):
            raise AssertionError("a cached set must not be aligned again")

    second = facedata.load_set("bbt", aligner=Refuses(), limit=6, progress=False)
    np.testing.assert_array_equal(second.crops, first.crops)
    assert second.files == first.files and second.identities == first.identities
