"""Identity-labelled face sets for training, and the wrapper that masks them.

ImageFolderFaces  root/<identity>/<image>, already aligned to the 112x112 ArcFace frame
RecordIOFaces     insightface's MXNet RecordIO sets (train.rec + train.idx: MS1MV2, Glint360K,
                  CASIA-WebFace, ...), read in pure Python: no mxnet
MaskedFaces       paints a synthetic mask (masks.render_mask) on a share of the samples and returns
                  the normalised tensor, the per-pixel region labels and the identity label

Both sets return (uint8 RGB HxWx3 array, int label) and expose `num_classes`.

RecordIO layout (dmlc-core recordio, as written by mxnet.recordio.MXIndexedRecordIO):
  train.idx  text, one "key<TAB>byte offset" line per record
  train.rec  records; each part is
               uint32 magic 0xced7230a (little endian)
               uint32 lrecord: upper 3 bits cflag, lower 29 bits the part's length
               the part's bytes, then zero padding to a multiple of 4
             cflag 0 is a whole record. The writer splits a record wherever the magic number
             occurs at a 4-byte aligned position of its payload and drops those 4 bytes: cflag 1
             starts such a record, 2 continues it, 3 ends it, and the reader puts the magic
             number back between the parts.
  payload    IRHeader struct '<IfQQ' (flag, label, id, id2); when flag > 0 the label is the
             `flag` float32 values that follow the header (and the header's label field is 0);
             then the encoded image (JPEG or PNG).
  insightface convention: record 0 is a header whose label is (a, b): records 1 .. a-1 are the
  images, records a .. b-1 describe one identity each (label: their image-record range), so there
  are b - a identities. An image's identity is its label, or the first value of a label list.
"""
from __future__ import annotations

import os
import struct
from collections import namedtuple
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from .masks import FRAME_SIZE, face_prior_mask, render_mask
from .mfsa import BACKGROUND, FACE

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".pgm", ".bmp")


def _decode(data: bytes | np.ndarray, source: str) -> np.ndarray:
    """Encoded image bytes -> uint8 RGB HxWx3 (grey images are expanded to 3 channels)."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{source}: cannot decode the image ({len(data)} bytes)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _check_size(image: np.ndarray, source: str, size: int, resize: bool) -> np.ndarray:
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return image
    if not resize:
        raise ValueError(f"{source} is {width}x{height}, expected an aligned {size}x{size} face "
                         f"(align it first, or pass resize=True to scale it)")
    interpolation = cv2.INTER_AREA if min(height, width) > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


# --- image folder --------------------------------------------------------------------------------

class ImageFolderFaces(Dataset):
    """root/<identity>/<image>: identities sorted by folder name and labelled 0..K-1, images sorted.

    Images (jpg, jpeg, png, pgm, bmp; grey ones expanded to RGB) must already be aligned to the
    112x112 frame: any other size raises a ValueError naming the file, unless resize=True.
    An identity folder without images is an error (its label would never be trained).
    """

    def __init__(self, root: str | os.PathLike, resize: bool = False, size: int = FRAME_SIZE) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: no such folder")
        self.resize, self.size = resize, size
        self.classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        if not self.classes:
            raise ValueError(f"{self.root} has no identity folders (expected root/<identity>/<image>)")
        self.samples: list[tuple[Path, int]] = []
        for label, name in enumerate(self.classes):
            files = sorted(p for p in (self.root / name).iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                raise ValueError(f"{self.root / name} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            self.samples += [(path, label) for path in files]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        path, label = self.samples[index]
        image = _decode(np.fromfile(path, np.uint8), str(path))
        return _check_size(image, str(path), self.size, self.resize), label


# --- RecordIO ------------------------------------------------------------------------------------

RECORDIO_MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", RECORDIO_MAGIC)
_LENGTH_MASK = (1 << 29) - 1
IR_FORMAT = "<IfQQ"
IR_SIZE = struct.calcsize(IR_FORMAT)  # 24

IRHeader = namedtuple("IRHeader", ["flag", "label", "id", "id2"])
"""flag: number of label floats (0: a single float in `label`); label: float or float32 array."""


def pack_record(label: float | Sequence[float], payload: bytes, id: int = 0, id2: int = 0) -> bytes:
    """IRHeader + label floats + payload, as mxnet.recordio.pack does."""
    if np.ndim(label) == 0:
        return struct.pack(IR_FORMAT, 0, float(label), id, id2) + payload
    values = np.asarray(label, dtype="<f4").ravel()
    return struct.pack(IR_FORMAT, len(values), 0.0, id, id2) + values.tobytes() + payload


def unpack_record(record: bytes) -> tuple[IRHeader, bytes]:
    """The inverse of pack_record: (header, payload)."""
    if len(record) < IR_SIZE:
        raise ValueError(f"record of {len(record)} bytes is shorter than its {IR_SIZE}-byte header")
    header = IRHeader(*struct.unpack(IR_FORMAT, record[:IR_SIZE]))
    rest = record[IR_SIZE:]
    if header.flag > 0:
        if len(rest) < 4 * header.flag:
            raise ValueError(f"record announces {header.flag} label values but has {len(rest)} bytes left")
        header = header._replace(label=np.frombuffer(rest, "<f4", header.flag).copy())
        rest = rest[4 * header.flag:]
    return header, rest


def identity_of(label: float | np.ndarray) -> int:
    """The identity in an image record's label: the label, or the first value of a label list."""
    return int(label if np.ndim(label) == 0 else label[0])


def _encode_parts(record: bytes) -> bytes:
    """One record in dmlc RecordIO framing (split at aligned magic numbers, padded to 4 bytes)."""
    if len(record) > _LENGTH_MASK:
        raise ValueError(f"a RecordIO record holds at most {_LENGTH_MASK} bytes, got {len(record)}")
    out, start = [], 0
    for i in range(0, len(record) - len(record) % 4, 4):
        if record[i:i + 4] == _MAGIC_BYTES:
            out += [_MAGIC_BYTES, struct.pack("<I", ((1 if start == 0 else 2) << 29) | (i - start)),
                    record[start:i]]  # i - start is a multiple of 4: no padding inside
            start = i + 4
    tail = len(record) - start
    out += [_MAGIC_BYTES, struct.pack("<I", ((3 if start else 0) << 29) | tail), record[start:],
            b"\0" * (-tail % 4)]
    return b"".join(out)


def write_recordio(path_rec: str | os.PathLike, path_idx: str | os.PathLike,
                   items: Iterable[tuple[int, float | Sequence[float], bytes]]) -> int:
    """Writes (key, label, payload bytes) records as a .rec/.idx pair; returns the record count.

    A helper for tests and small conversions (it is what the tests use to build fixtures): the
    files are laid out as mxnet.recordio.MXIndexedRecordIO writes them, with IRHeader id = key.
    For a set the trainer reads, see insightface_records().
    """
    count = 0
    with open(path_rec, "wb") as rec, open(path_idx, "w") as idx:
        for key, label, payload in items:
            idx.write(f"{int(key)}\t{rec.tell()}\n")
            rec.write(_encode_parts(pack_record(label, payload, id=int(key))))
            count += 1
    return count


def insightface_records(images: Sequence[np.ndarray], labels: Sequence[int], ext: str = ".png",
                        extra_label_values: int = 0) -> Iterator[tuple[int, float | list[float], bytes]]:
    """(key, label, payload) items in insightface's layout for write_recordio: header record 0,
    images (uint8 RGB, encoded as `ext`) grouped by identity at keys 1..n, then one record per
    identity holding its image-key range. extra_label_values > 0 stores each image label as a
    list [identity, 0, ...] (insightface sets with several label values per image look like that).
    """
    order = sorted(range(len(images)), key=lambda i: labels[i])
    identities = sorted(set(labels))
    if identities != list(range(len(identities))):
        raise ValueError("labels must be 0..K-1")
    first_identity_key = len(images) + 1
    yield 0, [float(first_identity_key), float(first_identity_key + len(identities))], b""
    ranges: dict[int, list[int]] = {}
    for key, i in enumerate(order, start=1):
        ok, encoded = cv2.imencode(ext, cv2.cvtColor(images[i], cv2.COLOR_RGB2BGR))
        if not ok:
            raise ValueError(f"cv2 cannot encode {ext}")
        label = [float(labels[i])] + [0.0] * extra_label_values if extra_label_values else float(labels[i])
        ranges.setdefault(labels[i], [key, key])[1] = key + 1
        yield key, label, encoded.tobytes()
    for identity in identities:
        yield first_identity_key + identity, [float(v) for v in ranges[identity]], b""


class RecordIOFaces(Dataset):
    """An insightface RecordIO training set (see the module docstring for the format).

    With a header record 0 (flag > 0) the images are records 1 .. label[0]-1 and num_classes is
    label[1] - label[0]; without one every record in the .idx is an image and num_classes is the
    largest identity + 1, found on first use by reading every record's header (not its image).
    The file is opened lazily per process, so the set can go to DataLoader workers.
    """

    def __init__(self, path_rec: str | os.PathLike, path_idx: str | os.PathLike | None = None,
                 resize: bool = False, size: int = FRAME_SIZE) -> None:
        self.path_rec = Path(path_rec)
        self.path_idx = Path(path_idx) if path_idx is not None else self.path_rec.with_suffix(".idx")
        if not self.path_rec.is_file():
            raise FileNotFoundError(f"{self.path_rec}: no such RecordIO file")
        if not self.path_idx.is_file():
            raise FileNotFoundError(f"{self.path_idx}: no such index file (the .idx that goes with "
                                    f"{self.path_rec.name}: 'key<TAB>offset' lines)")
        self.resize, self.size = resize, size
        self.offsets: dict[int, int] = {}
        for number, line in enumerate(self.path_idx.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            fields = line.split("\t")
            try:
                key, offset = int(fields[0]), int(fields[1])
            except (IndexError, ValueError):
                raise ValueError(f"{self.path_idx}:{number}: expected 'key<TAB>offset', got {line!r}") from None
            self.offsets[key] = offset
        self._file = None
        self._pid = None
        self._num_classes: int | None = None
        header = self.read_header(0) if 0 in self.offsets else None
        if header is not None and header.flag > 0:
            first_identity, end = int(header.label[0]), int(header.label[1])
            self.keys = list(range(1, first_identity))
            self._num_classes = end - first_identity
            self.header0 = (first_identity, end)
        else:
            self.keys = sorted(self.offsets)
            self.header0 = None
        missing = [k for k in self.keys if k not in self.offsets]
        if missing:
            raise ValueError(f"{self.path_idx} lacks {len(missing)} image keys announced by the header "
                             f"record (first: {missing[0]})")

    # Reading ---------------------------------------------------------------------------------

    def _handle(self):
        if self._file is None or self._pid != os.getpid():  # a forked worker opens its own
            self._file = open(self.path_rec, "rb")
            self._pid = os.getpid()
        return self._file

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_file"], state["_pid"] = None, None
        return state

    def read_record(self, key: int, limit: int | None = None) -> bytes:
        """The record's payload bytes (IRHeader, label values, image); at most about `limit`."""
        if key not in self.offsets:
            raise KeyError(f"{self.path_idx} has no record {key}")
        f = self._handle()
        offset = self.offsets[key]
        f.seek(offset)
        parts: list[bytes] = []
        size = 0
        while True:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError(f"{self.path_rec}: truncated record {key} at offset {offset} "
                                 f"(end of file)")
            magic, lrecord = struct.unpack("<II", head)
            if magic != RECORDIO_MAGIC:
                raise ValueError(f"{self.path_rec}: bad RecordIO magic 0x{magic:08x} at offset {offset} "
                                 f"(record {key}, expected 0x{RECORDIO_MAGIC:08x}): the file is corrupt "
                                 f"or {self.path_idx.name} does not belong to it")
            cflag, length = lrecord >> 29, lrecord & _LENGTH_MASK
            if cflag not in (0, 1, 2, 3) or (not parts and cflag in (2, 3)) or (parts and cflag in (0, 1)):
                raise ValueError(f"{self.path_rec}: bad continuation flag {cflag} at offset {offset} "
                                 f"(record {key})")
            data = f.read(length)
            if len(data) < length:
                raise ValueError(f"{self.path_rec}: truncated record {key} at offset {offset}: "
                                 f"{length} bytes announced, {len(data)} left")
            parts.append(data)
            size += length
            if cflag in (0, 3) or (limit is not None and size >= limit):
                break
            parts.append(_MAGIC_BYTES)  # the writer dropped it where it split the record
            size += 4
            f.seek(-length % 4, os.SEEK_CUR)
            offset = f.tell()
        return b"".join(parts)

    def read_header(self, key: int) -> IRHeader:
        header, _ = unpack_record(self.read_record(key))
        return header

    def _read_label_only(self, key: int) -> float | np.ndarray:
        # The header announces how many label floats follow; read just enough for those.
        record = self.read_record(key, limit=IR_SIZE)
        flag = struct.unpack(IR_FORMAT, record[:IR_SIZE])[0]
        if flag > 0 and len(record) < IR_SIZE + 4 * flag:
            record = self.read_record(key)
        return unpack_record(record)[0].label

    # Dataset ---------------------------------------------------------------------------------

    @property
    def num_classes(self) -> int:
        if self._num_classes is None:
            self._num_classes = max(identity_of(self._read_label_only(k)) for k in self.keys) + 1
        return self._num_classes

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        key = self.keys[index]
        header, payload = unpack_record(self.read_record(key))
        source = f"{self.path_rec} record {key}"
        image = _check_size(_decode(payload, source), source, self.size, self.resize)
        return image, identity_of(header.label)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def open_faces(path: str | os.PathLike, resize: bool = False) -> ImageFolderFaces | RecordIOFaces:
    """A .rec file (its .idx beside it), a folder holding train.rec, or an image folder."""
    path = Path(path)
    if path.suffix == ".rec":
        return RecordIOFaces(path, resize=resize)
    if (path / "train.rec").is_file():
        return RecordIOFaces(path / "train.rec", path / "train.idx", resize=resize)
    return ImageFolderFaces(path, resize=resize)


# --- masking -------------------------------------------------------------------------------------

class MaskedFaces(Dataset):
    """Wraps a face set: (normalised float tensor 3xHxW, region labels LongTensor HxW, label).

    With probability mask_probability a sample gets a synthetic mask (masks.render_mask) and its
    exact region map (0 face, 1 mask, 2 background); otherwise the labels come from the face prior
    alone (face inside FACE_PRIOR, background outside). hflip mirrors the face first with
    probability 0.5 (the ArcFace template is left-right symmetric to within 0.2 px).

    Every random choice comes from a generator seeded by (seed, epoch, index), so a sample is the
    same whichever worker loads it and whether or not the run was resumed. Call set_epoch(e)
    before creating each epoch's DataLoader iterator (workers get a copy of this object when the
    iterator starts, so do not use persistent_workers).
    """

    def __init__(self, dataset: Dataset, mask_probability: float, seed: int,
                 mean: Sequence[float] = (127.5, 127.5, 127.5), std: Sequence[float] = (127.5, 127.5, 127.5),
                 hflip: bool = False) -> None:
        if not 0.0 <= mask_probability <= 1.0:
            raise ValueError(f"mask_probability must be in [0, 1], got {mask_probability}")
        self.dataset = dataset
        self.mask_probability, self.seed, self.hflip = mask_probability, seed, hflip
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.epoch = 0

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image, label = self.dataset[index]
        rng = self.rng(index)
        if self.hflip and rng.random() < 0.5:
            image = np.ascontiguousarray(image[:, ::-1])
        if rng.random() < self.mask_probability:
            image, regions = render_mask(image, rng)
        else:
            regions = np.where(face_prior_mask(image.shape[0]), FACE, BACKGROUND).astype(np.uint8)
        tensor = torch.from_numpy(((image.astype(np.float32) - self.mean) / self.std).transpose(2, 0, 1).copy())
        return tensor, torch.from_numpy(regions.astype(np.int64)), label
