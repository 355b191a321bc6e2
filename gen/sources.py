"""Reading batches of images that users hand to the CLI: .npz, .npy or a folder of PNGs."""

from __future__ import annotations

import contextlib
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from gen.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def _check_pixels(images: np.ndarray, origin: str) -> np.ndarray:
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise InputError(f"{origin}: expected images N x H x W x C with C 1 or 3, got {images.shape}")
    if np.issubdtype(images.dtype, np.floating):
        return _floats_to_uint8(images, origin)
    if images.dtype != np.uint8:
        raise InputError(f"{origin}: expected uint8 images (or floats in [0, 1] or [-1, 1]), "
                         f"got {images.dtype}")
    return images


def _floats_to_uint8(images: np.ndarray, origin: str) -> np.ndarray:
    """Float images as the Python API takes them: [0, 1], or [-1, 1] when any value is
    negative (model outputs); anything else is refused with the conversion to make."""
    if images.size == 0:
        raise InputError(f"{origin}: holds no images")
    low, high = float(np.nanmin(images)), float(np.nanmax(images))
    if not np.isfinite(images).all() or low < -1 or high > 1:
        raise InputError(f"{origin}: float images must lie in [0, 1] or [-1, 1], got values in "
                         f"[{low:g}, {high:g}]; rescale them, or save uint8 images")
    unit = (images + 1) / 2 if low < 0 else images
    return np.round(unit * 255).astype(np.uint8)


@contextlib.contextmanager
def readable(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Turn numpy's and PIL's errors on a corrupt, foreign or pickled file into InputError."""
    try:
        yield
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, UnidentifiedImageError) as error:
        if isinstance(error, InputError):
            raise
        raise InputError(f"{path}: not a readable {what} ({error})") from None


def load_image_array(path: str | os.PathLike) -> np.ndarray:
    """uint8 N x H x W x C from an .npz (key `images`), an .npy, or a folder of images."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"{path}: no image files in folder")
        with readable(path, "folder of same-sized images"):
            images = np.stack([np.asarray(Image.open(f)) for f in files])
        return _check_pixels(images, str(path))
    if path.suffix == ".npz":
        with readable(path, ".npz"), np.load(path, allow_pickle=False) as arrays:
            if "images" not in arrays.files:
                raise InputError(f"{path}: no key 'images' (keys: {', '.join(arrays.files)})")
            return _check_pixels(arrays["images"], str(path))
    if path.suffix == ".npy":
        with readable(path, ".npy"):
            return _check_pixels(np.load(path, allow_pickle=False), str(path))
    raise InputError(f"{path}: expected an .npz, an .npy or a folder of images")
