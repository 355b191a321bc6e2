"""Interpolation endpoints from images: image files, rows of array files or of the run's own
Not-so-Clevr set, encoded to latents by a model with an encoder (a VAE)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gen.configs import GENERATED_SOURCES, RunConfig
from gen.data.batches import run_dataset
from gen.errors import InputError
from gen.images import to_model_range
from gen.interpolation.paths import SAMPLE_BATCH
from gen.sources import IMAGE_SUFFIXES, load_image_array
from gen.task import require_encoder


def image_shape(task, device: torch.device) -> tuple[int, int, int]:
    """(C, H, W) of the task's images, read off one sample."""
    with torch.no_grad():
        return tuple(task.sample(task.latents(1, torch.Generator()).to(device)).shape[1:])


_INDEXED = re.compile(r"^(?P<file>.+\.(?:npz|npy)):(?P<index>-?\d+)$")


def load_endpoint_image(spec: str, run: RunConfig) -> np.ndarray:
    """uint8 H x W x C image named on the command line by `spec`.

    - an image file (.png, .jpg, ...);
    - FILE.npz:I or FILE.npy:I, image I of an array file (as `gen data make` writes);
    - a bare integer I, image I of the run's own Not-so-Clevr set (dataset_images).
    """
    if re.fullmatch(r"-?\d+", spec):
        images = dataset_images(run).permute(0, 2, 3, 1).numpy()
        return _pick(images, int(spec), f"{run.data} data")
    indexed = _INDEXED.match(spec)
    if indexed:
        images = load_image_array(indexed["file"])
        return _pick(images, int(indexed["index"]), indexed["file"])
    path = Path(spec)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"{spec}: expected an image file ({', '.join(IMAGE_SUFFIXES)}), "
                         "FILE.npz:INDEX, FILE.npy:INDEX or a dataset index")
    if not path.is_file():
        raise InputError(f"{spec} does not exist")
    picture = np.asarray(Image.open(path))
    if picture.ndim == 2:
        picture = picture[..., None]
    if picture.shape[-1] == 4:
        picture = picture[..., :3]
    if picture.dtype != np.uint8 or picture.shape[-1] not in (1, 3):
        raise InputError(f"{spec}: expected an 8-bit grey or RGB image, got {picture.dtype} {picture.shape}")
    return picture


def _pick(images: np.ndarray, index: int, origin: str) -> np.ndarray:
    if not 0 <= index < len(images):
        raise InputError(f"{origin}: index {index} is out of range (0..{len(images) - 1})")
    return images[index]


def dataset_images(run: RunConfig) -> torch.Tensor:
    """The run's own Not-so-Clevr set, uint8 N x C x H x W on the CPU (squares: all 3136,
    held-out ones included, in `gen data make squares` order; shapes: the run's 50,000
    training images)."""
    if run.data not in GENERATED_SOURCES:
        raise InputError(f"a dataset image needs a squares or shapes model (this one was trained on "
                         f"{run.data}); give an image file instead")
    return run_dataset(run).generated.images


def fit_channels(picture: np.ndarray, shape: tuple[int, int, int], origin: str) -> torch.Tensor:
    """A uint8 H x W x C picture as the model's float 1 x C x H x W input in [-1, 1]:
    RGB is averaged to grey for 1-channel models and grey repeated for RGB ones; the size
    must already match (resizing would move the objects the interpolation is about)."""
    channels, height, width = shape
    if picture.shape[:2] != (height, width):
        raise InputError(f"{origin}: image is {picture.shape[1]} x {picture.shape[0]}, "
                         f"the model makes {width} x {height}")
    pixels = torch.tensor(picture, dtype=torch.float32)
    if pixels.shape[-1] != channels:
        pixels = pixels.mean(-1, keepdim=True) if channels == 1 else pixels.expand(height, width, channels)
    return to_model_range(pixels).permute(2, 0, 1)[None]


def encoded_keyframes(task, specs: list[str], run: RunConfig, device: torch.device) -> torch.Tensor:
    """K x 1 x D posterior means of the images named by specs (models with an encoder)."""
    encoder = require_encoder(task, "--from-images")
    shape = image_shape(task, device)
    images = torch.cat([fit_channels(load_endpoint_image(spec, run), shape, spec) for spec in specs])
    return encoder.encode(images.to(device)).cpu()[:, None]


@torch.no_grad()
def encoded_latents(task, images: torch.Tensor, n: int, seed: int, device: torch.device,
                    batch: int = SAMPLE_BATCH) -> torch.Tensor:
    """Posterior means (CPU) of n images drawn at random, seeded, from a uint8 N x C x H x W
    set (models with an encoder): endpoints that are real images rather than prior samples, so the
    score is about the path and not about how good prior samples are."""
    encoder = require_encoder(task, "--endpoints data")
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(images), (n,), generator=generator)
    codes = [encoder.encode(to_model_range(images[rows].to(device))).cpu() for rows in picks.split(batch)]
    return torch.cat(codes)
