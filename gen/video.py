"""Writing interpolation frames: MP4 (libx264 via imageio-ffmpeg), GIF, or a PNG strip.

A frame is one uint8 H x W x 3 picture of a grid of paths. Images are enlarged by whole
pixels (nearest neighbour) so 64 x 64 squares stay crisp instead of being smeared by the
player's or codec's scaler.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import imageio.v2 as imageio
import imageio.v3 as iio
import numpy as np
import torch

from gen.errors import InputError
from gen.fileio import atomic_path
from gen.images import grid_image, save_png, to_uint8

FORMATS = (".mp4", ".gif", ".png")
MACRO_BLOCK = 16  # H.264 codes 16 x 16 blocks; other sizes get rescaled by imageio-ffmpeg
PAD_VALUE = 128  # the grey of grid_image's padding
MP4_QUALITY = 9  # imageio 1..10; 9 is libx264 crf 5, as hard square edges ring at the default crf 25


def check_format(path: str | os.PathLike) -> str:
    """The output's suffix, or InputError naming the ones that can be written."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"output must end in {', '.join(FORMATS)}, got {path}")
    return suffix


def upscale(pixels: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement of uint8 ... x H x W x C by a whole factor."""
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    if scale == 1:
        return pixels
    return pixels.repeat(scale, axis=-3).repeat(scale, axis=-2)


def grid_frames(images: torch.Tensor, columns: int, scale: int = 1) -> Iterable[np.ndarray]:
    """t x N x C x H x W floats in [-1, 1] -> t pictures, N images tiled `columns` wide."""
    for frame in images:
        yield grid_image(upscale(to_uint8(frame), scale), nrow=columns)


def pad_to_block(picture: np.ndarray, block: int = MACRO_BLOCK) -> np.ndarray:
    """Pad H x W x 3 at the bottom and right to multiples of `block` (grey, like the grid
    padding), so the encoder needs no rescaling and yuv420p's even sizes are met."""
    height, width = picture.shape[:2]
    extra = ((0, -height % block), (0, -width % block), (0, 0))
    return np.pad(picture, extra, constant_values=PAD_VALUE)


def write_mp4(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float) -> int:
    """Stream frames into an H.264 MP4 (yuv420p: plays everywhere); returns the frame count."""
    count = 0
    with atomic_path(path) as tmp:
        writer = imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264", quality=MP4_QUALITY,
                                    pixelformat="yuv420p", macro_block_size=MACRO_BLOCK,
                                    ffmpeg_log_level="error")
        try:
            for frame in frames:
                writer.append_data(pad_to_block(frame))
                count += 1
        finally:
            writer.close()
        if count == 0:
            raise ValueError("no frames to write")
    return count


def write_gif(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float) -> int:
    """Looping GIF. GIF delays are whole centiseconds, so e.g. 30 fps plays at 1/0.03 s; the
    writer (Pillow) stores a run of identical frames once, with their delays added."""
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to write")
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=1000 / fps, loop=0)
    return len(frames)


def strip_picture(images: torch.Tensor, scale: int = 1) -> np.ndarray:
    """T x N x C x H x W -> one picture: a row per path, its frames left to right."""
    frames = images.shape[0]
    per_path = images.transpose(0, 1).reshape(-1, *images.shape[2:])
    return grid_image(upscale(to_uint8(per_path), scale), nrow=frames)


def write_animation(path: str | os.PathLike, chunks: Iterable[torch.Tensor], columns: int,
                    fps: float, scale: int) -> int:
    """Write frame chunks (t x N x C x H x W, N paths tiled `columns` wide) in the format
    the suffix names; returns how many frames were written."""
    suffix = check_format(path)
    if suffix == ".png":
        images = torch.cat(list(chunks))
        save_png(path, strip_picture(images, scale))
        return len(images)
    frames = (picture for chunk in chunks for picture in grid_frames(chunk, columns, scale))
    writer = write_mp4 if suffix == ".mp4" else write_gif
    return writer(path, frames, fps)
