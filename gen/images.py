"""Conversions between the model's image tensors and uint8 pixels, and grid writing.

Models work in float N x C x H x W in [-1, 1] (tanh range); files hold uint8 N x H x W x C.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from gen.fileio import atomic_path


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Float N x C x H x W in [-1, 1] -> uint8 N x H x W x C."""
    pixels = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).cpu().numpy()


def to_model_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels in any layout -> float in [-1, 1], the same layout."""
    return pixels.float() / 127.5 - 1


def from_uint8(pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 N x H x W x C -> float N x C x H x W in [-1, 1]."""
    return to_model_range(torch.as_tensor(pixels).permute(0, 3, 1, 2))


def grid_image(pixels: np.ndarray, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """Tile uint8 N x H x W x C images into one uint8 H' x W' x 3 picture."""
    # Imported here: torchvision's import takes about a second (it loads torch._dynamo), and
    # most commands that use this module draw no grid.
    from torchvision.utils import make_grid

    tensor = torch.as_tensor(pixels).permute(0, 3, 1, 2)
    grid = make_grid(tensor, nrow=nrow, padding=padding, pad_value=128)
    return grid.permute(1, 2, 0).numpy()


def save_png(path: str | os.PathLike, picture: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(picture).save(tmp)


def save_grid(path: str | os.PathLike, pixels: np.ndarray, nrow: int = 8) -> None:
    save_png(path, grid_image(pixels, nrow=nrow))
