import struct

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from conftest import synthetic_identities, write_image_folder
from maskface_train.datasets import (IR_FORMAT, RECORDIO_MAGIC, ImageFolderFaces, MaskedFaces, RecordIOFaces,
                                     insightface_records, open_faces, pack_record, write_recordio)
from maskface_train.masks import face_prior_mask
from maskface_train.mfsa import BACKGROUND, FACE, MASK

MAGIC = struct.pack("<I", RECORDIO_MAGIC)


def _bgr(image_rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)


# --- image folder ------------------------------------------------------------------------------

def test_image_folder_labels_sorted_identities_and_reads_every_format(tmp_path):
    red = np.zeros((112, 112, 3), np.uint8)
    red[..., 0] = 255  # RGB
    grey = np.arange(112 * 112, dtype=np.uint32).reshape(112, 112).astype(np.uint8)
    for name in ("carol", "alice", "bob"):  # created out of order
        (tmp_path / name).mkdir()
    cv2.imwrite(str(tmp_path / "carol" / "b.png"), _bgr(red))
    cv2.imwrite(str(tmp_path / "carol" / "a.bmp"), _bgr(red))
    cv2.imwrite(str(tmp_path / "alice" / "x.pgm"), grey)
    cv2.imwrite(str(tmp_path / "bob" / "y.jpg"), _bgr(red))
    (tmp_path / "bob" / "notes.txt").write_text("not an image")
    (tmp_path / "README").write_text("a file beside the identity folders")

    faces = ImageFolderFaces(tmp_path)
    assert faces.classes == ["alice", "bob", "carol"] and faces.num_classes == 3
    assert [(p.name, label) for p, label in faces.samples] == [("x.pgm", 0), ("y.jpg", 1), ("a.bmp", 2), ("b.png", 2)]
    image, label = faces[0]
    assert image.dtype == np.uint8 and image.shape == (112, 112, 3) and label == 0
    assert (image == grey[..., None]).all()  # grey expanded to 3 equal channels
    image, label = faces[3]
    assert label == 2 and (image.reshape(-1, 3) == (255, 0, 0)).all()  # RGB order, lossless png
    jpeg, _ = faces[1]
    assert np.abs(jpeg.astype(int) - red).mean() < 3 and jpeg[..., 0].mean() > 250


def test_image_folder_refuses_unaligned_sizes_unless_resize(tmp_path):
    (tmp_path / "a").mkdir()
    cv2.imwrite(str(tmp_path / "a" / "big.png"), np.full((90, 100, 3), 7, np.uint8))
    faces = ImageFolderFaces(tmp_path)
    with pytest.raises(ValueError, match=r"big\.png is 100x90, expected an aligned 112x112"):
        faces[0]
    image, _ = ImageFolderFaces(tmp_path, resize=True)[0]
    assert image.shape == (112, 112, 3) and (image == 7).all()


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        ImageFolderFaces(tmp_path / "missing")
    with pytest.raises(ValueError, match="no identity folders"):
        ImageFolderFaces(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "b").mkdir()
    with pytest.raises(ValueError, match=r"b holds no images"):
        ImageFolderFaces(tmp_path)
    (tmp_path / "b" / "broken.png").write_bytes(b"nor a png")
    with pytest.raises(ValueError, match=r"broken\.jpg: cannot decode"):
        ImageFolderFaces(tmp_path)[0]


# --- RecordIO ----------------------------------------------------------------------------------

def _insightface_set(tmp_path, identities=3, per_identity=2, **kwargs):
    images, labels = synthetic_identities(identities, per_identity, seed=1)
    rec, idx = tmp_path / "train.rec", tmp_path / "train.idx"
    write_recordio(rec, idx, insightface_records(images, labels, **kwargs))
    return rec, idx, images, labels


def test_recordio_round_trip_with_insightface_header(tmp_path):
    rec, idx, images, labels = _insightface_set(tmp_path, identities=3, per_identity=2)
    faces = RecordIOFaces(rec, idx)
    assert faces.header0 == (7, 10)  # 6 images at keys 1..6, identities at keys 7..9
    assert len(faces) == 6 and faces.num_classes == 3
    for i in range(6):
        image, label = faces[i]
        assert label == labels[i] and image.dtype == np.uint8
        assert np.array_equal(image, images[i])  # png: lossless, and RGB after decoding
    identity_record = faces.read_header(8)  # identity 1: image keys 3..4
    assert identity_record.flag == 2 and list(identity_record.label) == [3.0, 5.0]


def test_recordio_multi_float_labels_and_jpeg(tmp_path):
    rec, idx, images, labels = _insightface_set(tmp_path, ext=".jpg", extra_label_values=2)
    faces = RecordIOFaces(rec, idx)
    header = faces.read_header(3)
    assert header.flag == 3 and header.label.dtype == np.float32 and list(header.label) == [1.0, 0.0, 0.0]
    image, label = faces[2]
    error = np.abs(image.astype(int) - images[2]).mean()  # jpeg of a noisy image: a few levels
    swapped = np.abs(image[..., ::-1].astype(int) - images[2]).mean()
    assert label == 1 and error < 10 and swapped > 3 * error, (error, swapped)


def test_recordio_without_header_record_counts_classes_lazily(tmp_path):
    images, _ = synthetic_identities(1, 3, seed=2)
    encoded = [cv2.imencode(".png", _bgr(im))[1].tobytes() for im in images]
    rec, idx = tmp_path / "plain.rec", tmp_path / "plain.idx"
    # keys need not start at 0 or be dense; labels as single floats and as [identity, extra]
    write_recordio(rec, idx, [(5, 4.0, encoded[0]), (9, [11.0, 2.5], encoded[1]), (12, 0.0, encoded[2])])
    faces = open_faces(rec)  # finds plain.idx beside it
    assert isinstance(faces, RecordIOFaces) and faces.header0 is None
    assert faces.keys == [5, 9, 12] and faces._num_classes is None
    assert faces.num_classes == 12
    assert [faces[i][1] for i in range(3)] == [4, 11, 0]
    assert np.array_equal(faces[1][0], images[1])


def test_recordio_records_are_framed_and_padded_to_4_bytes(tmp_path):
    payloads = [b"", b"a", b"ab", b"abc", b"abcd", b"abcde"]
    rec, idx = tmp_path / "t.rec", tmp_path / "t.idx"
    write_recordio(rec, idx, [(k, float(k), p) for k, p in enumerate(payloads)])
    data = rec.read_bytes()
    offsets = [int(line.split("\t")[1]) for line in idx.read_text().splitlines()]
    assert len(data) % 4 == 0 and all(o % 4 == 0 for o in offsets)
    for key, (offset, payload) in enumerate(zip(offsets, payloads)):
        magic, lrecord = struct.unpack_from("<II", data, offset)
        length = 24 + len(payload)
        assert magic == RECORDIO_MAGIC and lrecord == length  # cflag 0: whole record
        body = data[offset + 8: offset + 8 + length]
        assert body == struct.pack(IR_FORMAT, 0, float(key), key, 0) + payload
        padding = data[offset + 8 + length: offset + 8 + length + (-length % 4)]
        assert padding == b"\0" * (-length % 4)
    faces = RecordIOFaces(rec, idx)
    assert [faces.read_record(k)[24:] for k in range(6)] == payloads


def test_recordio_splits_records_at_aligned_magic_numbers(tmp_path):
    # dmlc's writer drops an aligned magic number from the data and splits the record there
    # (cflag 1 first part, 2 middle, 3 last); a magic number at an unaligned position stays.
    payload = b"abcd" + MAGIC + MAGIC + b"xy" + MAGIC[:2] + b"z" + MAGIC
    record = pack_record(7.0, payload, id=0)
    rec, idx = tmp_path / "m.rec", tmp_path / "m.idx"
    write_recordio(rec, idx, [(0, 7.0, payload)])
    lrec = lambda cflag, length: struct.pack("<I", cflag << 29 | length)  # noqa: E731
    expected = (MAGIC + lrec(1, 28) + record[:28]          # header + "abcd", up to the first magic
                + MAGIC + lrec(2, 0)                        # nothing between the two magics
                + MAGIC + lrec(3, 2 + 2 + 1 + 4) + b"xy" + MAGIC[:2] + b"z" + MAGIC + b"\0" * 3)
    assert rec.read_bytes() == expected
    assert RecordIOFaces(rec, idx).read_record(0) == record


def test_recordio_corrupt_magic_names_the_offset(tmp_path):
    rec, idx, images, _ = _insightface_set(tmp_path)
    offset = int(idx.read_text().splitlines()[3].split("\t")[1])  # key 3
    data = bytearray(rec.read_bytes())
    data[offset:offset + 4] = b"\xde\xad\xbe\xef"
    rec.write_bytes(bytes(data))
    faces = RecordIOFaces(rec, idx)
    with pytest.raises(ValueError, match=rf"bad RecordIO magic 0xefbeadde at offset {offset} \(record 3"):
        faces[2]
    assert np.array_equal(faces[1][0], images[1])  # the others still read


def test_recordio_missing_or_broken_files(tmp_path):
    rec, idx, _, _ = _insightface_set(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"other\.idx: no such index file"):
        RecordIOFaces(rec, tmp_path / "other.idx")
    with pytest.raises(FileNotFoundError, match="no such RecordIO file"):
        RecordIOFaces(tmp_path / "none.rec", idx)
    bad_idx = tmp_path / "bad.idx"
    bad_idx.write_text("0\t0\n1 24\n")
    with pytest.raises(ValueError, match=r"bad\.idx:2: expected 'key<TAB>offset'"):
        RecordIOFaces(rec, bad_idx)
    data = rec.read_bytes()
    last = int(idx.read_text().splitlines()[6].split("\t")[1])  # key 6, the last image
    rec.write_bytes(data[:last + 40])
    faces = RecordIOFaces(rec, idx)
    with pytest.raises(ValueError, match=rf"truncated record 6 at offset {last}"):
        faces[5]


def test_open_faces_dispatch(tmp_path):
    images, labels = synthetic_identities(2, 1)
    write_image_folder(tmp_path / "folder", images, labels)
    assert isinstance(open_faces(tmp_path / "folder"), ImageFolderFaces)
    (tmp_path / "insight").mkdir()
    _insightface_set(tmp_path / "insight")
    assert isinstance(open_faces(tmp_path / "insight"), RecordIOFaces)


# --- masking wrapper ---------------------------------------------------------------------------

def test_masked_faces_labels_normalisation_and_determinism(tmp_path):
    images, labels = synthetic_identities(2, 3)
    faces = ImageFolderFaces(write_image_folder(tmp_path, images, labels))
    prior = np.where(face_prior_mask(), FACE, BACKGROUND)

    plain = MaskedFaces(faces, 0.0, seed=0, mean=(10, 20, 30), std=(2, 4, 8))
    tensor, regions, label = plain[4]
    assert tensor.dtype == torch.float32 and tensor.shape == (3, 112, 112) and label == 1
    assert regions.dtype == torch.int64 and np.array_equal(regions.numpy(), prior)
    restored = tensor.numpy().transpose(1, 2, 0) * np.float32([2, 4, 8]) + np.float32([10, 20, 30])
    assert np.allclose(restored, images[4], atol=1e-3)

    masked = MaskedFaces(faces, 1.0, seed=0)
    for index in range(len(masked)):
        tensor, regions, _ = masked[index]
        regions = regions.numpy()
        pixels = tensor.numpy().transpose(1, 2, 0) * 127.5 + 127.5
        assert (regions == MASK).mean() > 0.1
        assert np.array_equal(regions[regions != MASK], prior[regions != MASK])
        unmasked = regions != MASK  # the renderer leaves every other pixel untouched
        assert np.allclose(pixels[unmasked], images[index][unmasked], atol=1e-3)
        assert not np.allclose(pixels[~unmasked], images[index][~unmasked], atol=1.0)

    # (seed, epoch, index) decides everything: equal when equal, different when the epoch moves
    half = MaskedFaces(faces, 0.5, seed=3, hflip=True)
    first = [half[i] for i in range(len(half))]
    again = MaskedFaces(faces, 0.5, seed=3, hflip=True)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, [again[i] for i in range(6)]))
    half.set_epoch(1)
    assert any(not torch.equal(a[1], half[i][1]) or not torch.equal(a[0], half[i][0]) for i, a in enumerate(first))
    with pytest.raises(ValueError, match="mask_probability"):
        MaskedFaces(faces, 1.5, seed=0)


def test_dataloader_workers_read_recordio_reproducibly(tmp_path):
    rec, idx, _, labels = _insightface_set(tmp_path, identities=4, per_identity=2)
    data = MaskedFaces(RecordIOFaces(rec, idx), 0.5, seed=5, hflip=True)
    data[0]  # opens the file in this process: workers must open their own
    batches = {}
    for workers in (0, 2):
        loader = DataLoader(data, batch_size=4, num_workers=workers)
        batches[workers] = list(loader)
    assert [b[2].tolist() for b in batches[0]] == [sorted(labels)[:4], sorted(labels)[4:]]
    for a, b in zip(batches[0], batches[2]):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert batches[0][0][0].shape == (4, 3, 112, 112) and batches[0][0][1].shape == (4, 112, 112)
