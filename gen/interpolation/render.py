"""Rendering and scoring a checkpoint's latent paths: what `gen interpolate` runs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gen.checkpoint import load_task
from gen.configs import GENERATED_SOURCES
from gen.devices import resolve_device
from gen.errors import InputError
from gen.interpolation.endpoints import dataset_images, encoded_keyframes, encoded_latents
from gen.interpolation.paths import MODES, keyframe_path, random_keyframes, sample_path
from gen.interpolation.score import MIN_FRAMES, PathScores, score_model, score_segments
from gen.task import require_encoder
from gen.video import check_format, write_animation

ENDPOINTS = ("samples", "data")


@dataclass
class InterpolationResult:
    """What `interpolate_checkpoint` made: the video's frame count, and the scores with a
    description of their endpoints (None where not asked for)."""

    frames: int | None
    scores: PathScores | None
    endpoints: str | None
    record: dict | None  # every setting and number of the score, JSON-ready


def check_request(out: str | os.PathLike | None, score: bool, mode: str = "slerp",
                  frames_per_segment: int = 30, endpoints: str = "samples") -> None:
    """InputError unless the request makes sense before any model is loaded."""
    if out is None and not score:
        raise InputError("nothing to do: give --out FILE (.mp4, .gif or .png), --score, or both")
    if out is not None:
        check_format(out)
    if mode not in MODES:
        raise InputError(f"unknown interpolation mode {mode!r}; choose from {', '.join(MODES)}")
    if endpoints not in ENDPOINTS:
        raise InputError(f"unknown endpoints {endpoints!r}; choose from {', '.join(ENDPOINTS)}")
    if score and frames_per_segment + 1 < MIN_FRAMES:
        raise InputError(f"--score needs --frames-per-segment of at least {MIN_FRAMES - 1}")


def interpolate_checkpoint(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike | None = None,
    score: bool = False,
    *,
    mode: str = "slerp",
    keyframes: int = 4,
    frames_per_segment: int = 30,
    grid: tuple[int, int] = (4, 4),
    fps: int = 30,
    scale: int = 2,
    seed: int = 0,
    from_images: tuple[str, str] | None = None,
    paths: int = 256,
    endpoints: str = "samples",
    device: str = "auto",
) -> InterpolationResult:
    """Render a checkpoint's latent paths to `out` (.mp4, .gif or .png) and/or score them.

    Without `from_images`, each of the grid's rows x columns cells loops through `keyframes`
    seeded latents; with it (a VAE), one path loops between the two images' encodings.
    `score` measures `paths` paths between valid samples (`endpoints="samples"`), between
    encodings of random pairs of the run's data images (`"data"`, a VAE), or the one path
    between `from_images`. Scoring runs before any video is written, so a model with too few
    valid samples leaves no file behind.
    """
    check_request(out, score, mode, frames_per_segment, endpoints)
    torch_device = resolve_device(device)
    task, record = load_task(checkpoint, torch_device)
    dataset = record.run.data
    if score and dataset not in GENERATED_SOURCES:
        raise InputError(f"--score needs a squares or shapes model; this one was trained on {dataset}")

    rows, columns = grid
    if from_images is not None:
        ends = encoded_keyframes(task, list(from_images), record.run, torch_device)
    else:
        ends = random_keyframes(task, keyframes, rows * columns, seed)
    scores, described, valid_rate = None, None, None
    if score and from_images is not None:
        scores = score_segments(task, ends[0], ends[1], frames_per_segment, mode, dataset, torch_device)
        described = "the two images' encodings"
    elif score and endpoints == "data":
        require_encoder(task, "--endpoints data")
        images = dataset_images(record.run)
        latents = encoded_latents(task, images, 2 * paths, seed + 1, torch_device)
        scores = score_segments(task, latents[:paths], latents[paths:], frames_per_segment, mode, dataset,
                                torch_device)
        described = f"encodings of random pairs of the {len(images)} {dataset} images"
    elif score:
        scores, valid_rate = score_model(task, dataset, paths, frames_per_segment, mode, seed + 1,
                                         torch_device)
        described = f"valid samples ({valid_rate:.1%} of draws were valid)"

    frames = None
    if out is not None:
        path = keyframe_path(ends, frames_per_segment, mode)
        frames = write_animation(Path(out), sample_path(task, path, torch_device), columns, fps, scale)
    report = None
    if scores is not None:
        report = {"checkpoint": str(checkpoint), "kind": record.kind, "mode": mode,
                  "frames_per_segment": frames_per_segment, "seed": seed,
                  "from_images": list(from_images) if from_images else None,
                  "endpoints": None if from_images else endpoints,
                  "endpoint_valid_rate": valid_rate, "summary": scores.summary(),
                  "per_path": scores.per_path()}
    return InterpolationResult(frames, scores, described, report)
