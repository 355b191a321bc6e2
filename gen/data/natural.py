"""Natural-image datasets: LSUN in its released lmdb layout, and any folder of images.

Both decode in DataLoader workers and resize + centre-crop to a square resolution, so a
model sees the whole scene at the size it was built for.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import lmdb
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms

from gen.errors import InputError
from gen.sources import IMAGE_SUFFIXES


def image_transform(resolution: int) -> transforms.Compose:
    """PIL image -> float 3 x resolution x resolution in [-1, 1]."""
    return transforms.Compose([
        transforms.Resize(resolution),
        transforms.CenterCrop(resolution),
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ])


def find_lmdb(root: str | os.PathLike, category: str = "bedroom") -> Path:
    """The lmdb folder: `<root>/<category>_train_lmdb`, or root itself if it holds data.mdb."""
    root = Path(root)
    for candidate in (root / f"{category}_train_lmdb", root):
        if (candidate / "data.mdb").is_file():
            return candidate
    raise InputError(f"no LSUN lmdb under {root}: expected {root / f'{category}_train_lmdb'}/data.mdb")


class LSUN(Dataset):
    """LSUN lmdb: keys are image ids, values encoded image bytes (webp or jpeg).

    The environment is opened lazily in each worker: lmdb handles must not cross a fork.
    """

    def __init__(self, root: str | os.PathLike, resolution: int, category: str = "bedroom") -> None:
        self.path = find_lmdb(root, category)
        self.transform = image_transform(resolution)
        with lmdb.open(str(self.path), readonly=True, lock=False, readahead=False,
                       meminit=False) as env, env.begin() as txn:
            self.keys = [key for key, _ in txn.cursor()]
        if not self.keys:
            raise InputError(f"LSUN lmdb {self.path} holds no images")
        self._env: lmdb.Environment | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> torch.Tensor:
        if self._env is None:
            self._env = lmdb.open(str(self.path), readonly=True, lock=False, readahead=False,
                                  meminit=False)
        with self._env.begin() as txn:
            data = txn.get(self.keys[index])
        return self.transform(Image.open(io.BytesIO(data)).convert("RGB"))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_env": None}


class ImageFolder(Dataset):
    """Every image file below a folder, searched recursively, in sorted order."""

    def __init__(self, root: str | os.PathLike, resolution: int) -> None:
        root = Path(root)
        if not root.is_dir():
            raise InputError(f"image folder {root} does not exist")
        self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise InputError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {root}")
        self.transform = image_transform(resolution)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        with Image.open(self.files[index]) as image:
            return self.transform(image.convert("RGB"))
