"""Image sets to measure samples against, read one way whatever holds them: a prepared
folder, an LSUN lmdb, a folder of image files, or an .npz/.npy of images.

Each set knows a fingerprint that changes when its files do, so features computed from it
can be cached and found again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gen.data.natural import LSUN, ImageFolder, SkippingDataset, find_lmdb
from gen.data.prepare import MANIFEST, PreparedImages
from gen.errors import InputError
from gen.fileio import file_identity
from gen.sources import load_image_array

IMAGE_SET_KINDS = ("prepared", "lsun", "folder", "array")


@dataclass
class ImageSet:
    """`count` images of `resolution` px; `read(indices)` gives them as uint8 N x R x R x 3."""

    description: str
    fingerprint: str
    count: int
    resolution: int
    read: Callable[[Sequence[int]], np.ndarray]

    def subset(self, n: int, seed: int) -> np.ndarray:
        """Indices of a seeded random subset of min(n, count) images, in file order."""
        if n >= self.count:
            return np.arange(self.count)
        return np.sort(np.random.default_rng(seed).choice(self.count, n, replace=False))


def _decoded(dataset: SkippingDataset) -> Callable[[Sequence[int]], np.ndarray]:
    """uint8 reading of a file source; unreadable records give the next readable one, as in
    training."""

    def read(indices: Sequence[int]) -> np.ndarray:
        size = dataset.resolution
        images = [np.asarray(dataset.first_readable(int(index), dataset.rgb)[0]) for index in indices]
        return np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)

    return read


def detect_kind(path: Path) -> str:
    """What holds a set: a prepared folder (manifest.json), an lmdb (data.mdb, or LSUN's
    bedroom_train_lmdb inside), a folder of images, or an image array file."""
    if path.is_dir():
        if (path / MANIFEST).is_file():
            return "prepared"
        if (path / "data.mdb").is_file() or (path / "bedroom_train_lmdb" / "data.mdb").is_file():
            return "lsun"
        return "folder"
    if path.suffix in (".npz", ".npy"):
        return "array"
    raise InputError(f"{path}: expected a prepared folder, an LSUN lmdb, an image folder, an .npz or an .npy")


def open_image_set(path: str | os.PathLike, resolution: int, kind: str | None = None) -> ImageSet:
    """The images at `path` at `resolution` px: decoded sources are resized and centre-cropped
    as training does; prepared folders and arrays must already be that size."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    kind = kind or detect_kind(path)
    if kind == "prepared":
        prepared = PreparedImages(path, resolution)
        identity = hashlib.sha256((path / MANIFEST).read_bytes()).hexdigest()
        return ImageSet(f"prepared set {path}", f"prepared|{identity}|{file_identity(prepared.path)}",
                        len(prepared), resolution,
                        lambda indices: np.asarray(prepared.images[np.asarray(indices)]))
    if kind == "lsun":
        lsun = LSUN(path, resolution)
        lsun.check_readable()
        database = find_lmdb(path) / "data.mdb"
        return ImageSet(lsun.source(), f"lsun|{file_identity(database)}|{resolution}", len(lsun), resolution,
                        _decoded(lsun))
    if kind == "folder":
        folder = ImageFolder(path, resolution)
        folder.check_readable()
        files = hashlib.sha256("\n".join(file_identity(file) for file in folder.files).encode()).hexdigest()
        return ImageSet(folder.source(), f"folder|{path.resolve()}|{files}|{resolution}", len(folder),
                        resolution, _decoded(folder))
    if kind == "array":
        images = load_image_array(path)
        if images.shape[1:3] != (resolution, resolution):
            raise InputError(f"{path} holds {images.shape[1]} x {images.shape[2]} images; expected "
                             f"{resolution} x {resolution}")
        if images.shape[-1] == 1:
            images = np.repeat(images, 3, axis=-1)
        return ImageSet(f"images of {path}", f"array|{file_identity(path)}", len(images), resolution,
                        lambda indices: images[np.asarray(indices)])
    raise InputError(f"unknown image set kind {kind!r}; choose from {', '.join(IMAGE_SET_KINDS)}")

