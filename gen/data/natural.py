"""Natural-image datasets: LSUN in its released lmdb layout, and any folder of images.

Both decode in DataLoader workers and resize + centre-crop to a square resolution, so a
model sees the whole scene at the size it was built for. A record that does not decode
(truncated, not an image, empty) is skipped for the next readable one and counted, so a
batch keeps its shape and days of training do not die on one bad file.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import lmdb
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from gen.errors import InputError
from gen.fileio import cached_arrays, file_identity
from gen.images import to_model_range
from gen.sources import IMAGE_SUFFIXES

T = TypeVar("T")


def crop_transform(resolution: int) -> Callable[[Image.Image], Image.Image]:
    """PIL image -> PIL image, resized (short side) and centre-cropped to resolution."""
    # Imported here: torchvision's import takes about a second, which only natural images need.
    from torchvision import transforms

    return transforms.Compose([transforms.Resize(resolution), transforms.CenterCrop(resolution)])


# What PIL and lmdb raise for a record that is not a decodable image.
UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError, lmdb.Error)


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB from any mode: 16- and 32-bit greyscale are scaled down (PIL's own convert
    clips them to white), CMYK, palette and alpha modes go through PIL's conversion."""
    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
        sixteen_bit = image.mode != "I" or values.max(initial=0) > 255  # "I" holds either depth
        image = Image.fromarray((values >> 8 if sixteen_bit else values).astype(np.uint8), mode="L")
    return image.convert("RGB")


class SkippingDataset(Dataset):
    """Records of encoded images, resized and centre-cropped to `resolution`. Items are
    (image, records skipped to reach it): the first readable record from `index` on,
    wrapping round. Subclasses open a record and name the source and its records."""

    def __init__(self, resolution: int) -> None:
        self.resolution = resolution
        self.crop = crop_transform(resolution)

    def open(self, index: int) -> Image.Image:
        raise NotImplementedError

    def source(self) -> str:
        raise NotImplementedError

    def record_names(self) -> list[str]:
        """What identifies each record in its source (lmdb keys, relative paths)."""
        raise NotImplementedError

    def rgb(self, index: int) -> Image.Image:
        """Record `index` as a cropped 8-bit RGB image; UNREADABLE errors when it is not one."""
        with self.open(index) as image:
            return self.crop(to_rgb(image))

    def decode(self, index: int) -> torch.Tensor:
        """Record `index` as float 3 x resolution x resolution in [-1, 1]."""
        return to_model_range(torch.from_numpy(np.array(self.rgb(index))).permute(2, 0, 1).contiguous())

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.first_readable(index, self.decode)

    def first_readable(self, index: int, read: Callable[[int], T]) -> tuple[T, int]:
        """`read` of the first readable record from `index` on, wrapping round, and how many
        records were skipped to reach it."""
        for skipped in range(len(self)):
            try:
                return read((index + skipped) % len(self)), skipped
            except UNREADABLE:
                continue
        raise InputError(f"no record of {self.source()} decodes as an image")

    def check_readable(self) -> None:
        """InputError at start when no record decodes (at worst a scan of the whole source;
        a healthy one answers at its first record)."""
        self[0]


def find_lmdb(root: str | os.PathLike, category: str = "bedroom") -> Path:
    """The lmdb folder: `<root>/<category>_train_lmdb`, or root itself if it holds data.mdb."""
    root = Path(root)
    for candidate in (root / f"{category}_train_lmdb", root):
        if (candidate / "data.mdb").is_file():
            return candidate
    raise InputError(f"no LSUN lmdb under {root}: expected {root / f'{category}_train_lmdb'}/data.mdb")


_ENVIRONMENTS: dict[str, tuple[tuple[int, int], lmdb.Environment]] = {}


def open_lmdb(path: str | os.PathLike) -> lmdb.Environment:
    """The process's one read-only environment of a database: lmdb refuses to open a
    database twice in a process (a forked DataLoader worker counts as the process that
    opened it), so every reader of a path shares one opening, renewed when the database
    file changes (size or modification time)."""
    key = str(Path(path).resolve())
    database = os.stat(os.path.join(key, "data.mdb"))  # every record read comes here: one stat
    identity = (database.st_size, database.st_mtime_ns)
    opened = _ENVIRONMENTS.get(key)
    if opened is None or opened[0] != identity:
        if opened is not None:
            opened[1].close()
        environment = lmdb.open(key, readonly=True, lock=False, readahead=False, meminit=False)
        _ENVIRONMENTS[key] = (identity, environment)
    return _ENVIRONMENTS[key][1]


def lmdb_keys(path: Path) -> list[bytes]:
    """Every key of an lmdb, in order, from a cached index when one matches the database's
    path, size and modification time (a changed database gets a new index), else from a
    key-only cursor scan (values stay on disk), cached for the next start as a plain .npz
    (data, no pickle). An unwritable cache only costs the scan."""
    identity = file_identity(path / "data.mdb")

    def scan() -> dict[str, np.ndarray]:
        with open_lmdb(path).begin() as txn:
            keys = list(txn.cursor().iternext(keys=True, values=False))
        lengths = np.array([len(key) for key in keys], dtype=np.int64)  # .npz bytes drop trailing NULs
        return {"keys": np.array(keys, dtype=bytes), "lengths": lengths}

    index = cached_arrays("lsun-keys", identity, scan)
    return [key.ljust(length, b"\0")
            for key, length in zip(index["keys"].tolist(), index["lengths"].tolist())]


class LSUN(SkippingDataset):
    """LSUN lmdb: keys are image ids, values encoded image bytes (webp or jpeg).

    The environment is opened on first read and shared by every reader in the process
    (`open_lmdb`).
    """

    def __init__(self, root: str | os.PathLike, resolution: int, category: str = "bedroom") -> None:
        super().__init__(resolution)
        self.path = find_lmdb(root, category)
        self.keys = lmdb_keys(self.path)
        if not self.keys:
            raise InputError(f"LSUN lmdb {self.path} holds no images")

    def __len__(self) -> int:
        return len(self.keys)

    def source(self) -> str:
        return f"LSUN lmdb {self.path}"

    def record_names(self) -> list[str]:
        return [key.decode("latin-1") for key in self.keys]

    def open(self, index: int) -> Image.Image:
        with open_lmdb(self.path).begin() as txn:
            data = txn.get(self.keys[index])
        if data is None:
            raise OSError(f"key {self.keys[index]!r} has no value")
        return Image.open(io.BytesIO(data))


class ImageFolder(SkippingDataset):
    """Every image file below a folder, searched recursively, in sorted order."""

    def __init__(self, root: str | os.PathLike, resolution: int) -> None:
        root = Path(root)
        if not root.is_dir():
            raise InputError(f"image folder {root} does not exist")
        super().__init__(resolution)
        self.root = root
        self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise InputError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {root}")

    def __len__(self) -> int:
        return len(self.files)

    def source(self) -> str:
        return f"image folder {self.root}"

    def record_names(self) -> list[str]:
        return [str(path.relative_to(self.root)) for path in self.files]

    def open(self, index: int) -> Image.Image:
        return Image.open(self.files[index])
