"""Samples to look at or measure: drawn from a checkpoint of any kind (GAN or VAE), or read
from image files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gen.checkpoint import CHECKPOINT_NAME, load_task
from gen.devices import resolve_device
from gen.errors import InputError
from gen.images import to_uint8
from gen.sources import load_image_array
from gen.task import draw_samples


def sample_images(checkpoint: str | os.PathLike, n: int, seed: int = 0,
                  device: str = "auto") -> np.ndarray:
    """n seeded samples as uint8 N x H x W x C (GAN: EMA generator; VAE: decoded prior)."""
    if n < 1:
        raise InputError(f"sample count must be positive, got {n}")
    torch_device = resolve_device(device)
    task, _ = load_task(checkpoint, torch_device)
    return to_uint8(draw_samples(task, n, seed, torch_device))


def is_checkpoint(source: str | os.PathLike) -> bool:
    """Whether a path names a checkpoint (a .pt file or a run directory) rather than images."""
    source = Path(source)
    return source.suffix == ".pt" or (source / CHECKPOINT_NAME).is_file()


def load_samples(source: str | os.PathLike, count: int | None = None, seed: int = 0,
                 device: str = "auto", default_count: int = 10_000) -> np.ndarray:
    """uint8 N x H x W x C samples to measure: `count` (default `default_count`) seeded
    samples of a checkpoint or run directory, or the first `count` images (default all) of
    an .npz, .npy or image folder."""
    if not Path(source).exists():
        raise InputError(f"{source} does not exist")
    if is_checkpoint(source):
        return sample_images(source, count or default_count, seed, device)
    images = load_image_array(source)
    if count is not None and count > len(images):
        raise InputError(f"--n {count} is more than the {len(images)} images in {source}")
    return images[:count]
