"""Drawing samples from a trained checkpoint of any kind (GAN or VAE)."""

from __future__ import annotations

import os

import numpy as np

from gen.images import to_uint8
from gen.runs import load_task
from gen.training import draw_samples, resolve_device


def sample_images(checkpoint: str | os.PathLike, n: int, seed: int = 0,
                  device: str = "auto") -> np.ndarray:
    """n seeded samples as uint8 N x H x W x C (GAN: EMA generator; VAE: decoded prior)."""
    if n < 1:
        raise ValueError(f"sample count must be positive, got {n}")
    torch_device = resolve_device(device)
    task, _ = load_task(checkpoint, torch_device)
    return to_uint8(draw_samples(task, n, seed, torch_device))
