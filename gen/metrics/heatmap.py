"""The paper's coverage picture: per-pixel mean images of generated and real data side by side."""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image, ImageDraw
from scipy import signal

from gen.data.notsoclevr import CANVAS, CIRCLE_RADIUS, COLOUR_CHANNELS, COLOURS, SQUARE_HALF
from gen.errors import InputError
from gen.geometry import layout_of, value_range_of
from gen.images import save_png
from gen.metrics.reference import shapes_reference, squares_reference


def mean_image(
    images: np.ndarray | torch.Tensor,
    dataset: str = "squares",
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Per-pixel mean intensity in [0, 1], K x H x W: the grey channel for squares, the red
    and blue channels for shapes. This is the paper's coverage picture."""
    layout, channels = layout_of(images)
    low, high = value_range_of(images, value_range)
    total = 0.0
    for start in range(0, len(images), 4096):
        chunk = images[start : start + 4096]
        chunk = chunk.detach().cpu().numpy() if isinstance(chunk, torch.Tensor) else chunk
        total = total + chunk.sum(axis=0, dtype=np.float64)
    mean = (total / len(images) - low) / (high - low)
    mean = {"nhw": mean[None], "nhwc": np.moveaxis(mean, -1, 0), "nchw": mean}[layout]
    if dataset == "squares":
        return mean.mean(axis=0, keepdims=True)
    if channels != 3:
        raise InputError("shapes images need 3 channels (red and blue objects), got 1")
    return mean[list(COLOUR_CHANNELS)]


def reference_mean_image(dataset: str = "squares") -> np.ndarray:
    """The exact mean image of the dataset, K x H x W as mean_image returns it."""
    offsets = np.arange(-SQUARE_HALF, SQUARE_HALF + 1)
    square = np.ones((len(offsets), len(offsets)))
    if dataset == "squares":
        return signal.convolve2d(squares_reference(), square, mode="same")[None]
    circle = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= CIRCLE_RADIUS**2).astype(float)
    channel = signal.convolve2d(shapes_reference(), (square + circle) / 2, mode="same")
    return np.stack([channel, channel])


def _hot(values: np.ndarray) -> np.ndarray:
    """Black-red-yellow-white colour map of values in [0, 1] -> uint8 H x W x 3."""
    rgb = np.clip(np.stack([3 * values, 3 * values - 1, 3 * values - 2], axis=-1), 0, 1)
    return (rgb * 255).round().astype(np.uint8)


def heatmap_picture(
    images: np.ndarray | torch.Tensor,
    dataset: str = "squares",
    value_range: tuple[float, float] | None = None,
    scale: int = 4,
) -> np.ndarray:
    """uint8 picture: one row per object colour (squares: one; shapes: red, blue), generated
    mean image left, the real data's exact mean image right.

    Each panel is scaled to its own maximum, so the picture shows where mass goes rather
    than how much; the hot colour map runs black (none) - red - yellow - white (most).
    """
    header, gap = 14, 4
    rows = [(generated, real) for generated, real in
            zip(mean_image(images, dataset, value_range), reference_mean_image(dataset), strict=True)]
    side = CANVAS * scale
    picture = np.full((header + len(rows) * (side + gap), 2 * side + gap, 3), 255, dtype=np.uint8)
    for row, panels in enumerate(rows):
        top = header + row * (side + gap)
        for column, panel in enumerate(panels):
            peak = panel.max()
            values = panel / peak if peak > 0 else panel
            left = column * (side + gap)
            picture[top : top + side, left : left + side] = _hot(values).repeat(scale, 0).repeat(scale, 1)
    canvas = Image.fromarray(picture)
    draw = ImageDraw.Draw(canvas)
    draw.text((2, 1), f"generated (n={len(images)})", fill=(0, 0, 0))
    draw.text((side + gap + 2, 1), "real data (exact)", fill=(0, 0, 0))
    if dataset == "shapes":
        for row, colour in enumerate(COLOURS):
            draw.text((3, header + row * (side + gap) + 2), f"{colour} object", fill=(255, 255, 255))
    return np.asarray(canvas)


def save_heatmap(
    path: str | os.PathLike,
    images: np.ndarray | torch.Tensor,
    dataset: str = "squares",
    value_range: tuple[float, float] | None = None,
) -> None:
    """Write heatmap_picture as a PNG, atomically."""
    save_png(path, heatmap_picture(images, dataset, value_range))
