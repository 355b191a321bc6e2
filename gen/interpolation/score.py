"""The move-vs-fade score: does an interpolation move objects, fade them, or teleport them?

Every frame of a path is decoded (gen.geometry). Per path of T frames (S = T - 1 steps):

- valid_fraction: frames that hold exactly the right objects (geometry's validity).
- Tracking: in each frame, an object of an expected colour (white for squares; red and
  blue for shapes) is *tracked* when it is the only component of that colour with at least
  `min_pixels` pixels; smaller specks are noise, not objects. Steps are the centre
  displacements (px) between consecutive frames where an object is tracked in both.
- mean_step, max_step: the mean and the largest step, as fractions of the object's net
  displacement between the path's first and last frame. Smooth straight motion gives 1/S
  for both; a teleport gives a max_step near 1 (one step does the whole journey); wandering
  raises mean_step above 1/S. Undefined (NaN) when an endpoint is not tracked or the object
  moves less than `min_travel` px net. For shapes, mean_step averages and max_step takes the
  largest over the two objects.
- vanishes, doubles: frames where an expected colour goes from at least one object to none
  (faded out before its replacement faded in), or from at most one to two or more (the new
  object faded in before the old one faded out).

Each path gets one class: fade (any vanish or double), else teleport (max_step at least
JUMP_SHARE), else move (max_step below it), else unmeasured (max_step undefined).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from gen.data.notsoclevr import COLOUR_CHANNELS
from gen.errors import InputError
from gen.geometry import DATASETS, MIN_PIXELS, decode, validate
from gen.images import to_uint8
from gen.interpolation.paths import SAMPLE_BATCH, interpolate, sample_path
from gen.tables import format_rows

MIN_TRAVEL = 1.0  # px of net displacement below which step ratios mean nothing
JUMP_SHARE = 0.5  # one step covering half the journey or more is a teleport
MIN_FRAMES = 5  # with S >= 4 steps, smooth motion (1/S <= 0.25) is well below JUMP_SHARE
CLASSES = ("move", "teleport", "fade", "unmeasured")
MAX_DRAWS_PER_ENDPOINT = 64  # give up finding valid endpoints below a 1/64 valid rate


@dataclass
class PathScores:
    """Per-path numbers (arrays of length P) for paths of `frames` frames; see the module
    docstring for their definitions."""

    dataset: str
    frames: int
    valid_fraction: np.ndarray
    tracked_fraction: np.ndarray
    mean_step: np.ndarray
    max_step: np.ndarray
    vanishes: np.ndarray
    doubles: np.ndarray

    def __len__(self) -> int:
        return len(self.valid_fraction)

    def classes(self) -> np.ndarray:
        """Per path an index into CLASSES."""
        label = np.full(len(self), CLASSES.index("unmeasured"), dtype=np.int64)
        measured = ~np.isnan(self.max_step)
        label[measured & (self.max_step < JUMP_SHARE)] = CLASSES.index("move")
        label[measured & (self.max_step >= JUMP_SHARE)] = CLASSES.index("teleport")
        label[(self.vanishes + self.doubles) > 0] = CLASSES.index("fade")
        return label

    def summary(self) -> dict:
        """Aggregates over all paths (means over the paths where a number is defined)."""
        steps = self.frames - 1
        counts = np.bincount(self.classes(), minlength=len(CLASSES))
        measured = ~np.isnan(self.max_step)
        return {
            "dataset": self.dataset,
            "paths": len(self),
            "frames_per_path": self.frames,
            "smooth_step": 1 / steps,
            "valid_fraction": float(self.valid_fraction.mean()),
            "tracked_fraction": float(self.tracked_fraction.mean()),
            "measured_paths": int(measured.sum()),
            "mean_step": _nanmean(self.mean_step),
            "max_step": _nanmean(self.max_step),
            "max_step_median": float(np.median(self.max_step[measured])) if measured.any() else float("nan"),
            "vanishes_per_path": float(self.vanishes.mean()),
            "doubles_per_path": float(self.doubles.mean()),
            **{f"{name}_fraction": float(count / len(self)) for name, count in zip(CLASSES, counts)},
        }

    def per_path(self) -> dict[str, list]:
        return {
            "valid_fraction": self.valid_fraction.tolist(),
            "tracked_fraction": self.tracked_fraction.tolist(),
            "mean_step": self.mean_step.tolist(),
            "max_step": self.max_step.tolist(),
            "vanishes": self.vanishes.tolist(),
            "doubles": self.doubles.tolist(),
            "class": [CLASSES[c] for c in self.classes()],
        }

    @staticmethod
    def concatenate(parts: list[PathScores]) -> PathScores:
        fields = ("valid_fraction", "tracked_fraction", "mean_step", "max_step", "vanishes", "doubles")
        return PathScores(parts[0].dataset, parts[0].frames,
                          **{name: np.concatenate([getattr(p, name) for p in parts]) for name in fields})


def _nanmean(values: np.ndarray) -> float:
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if len(defined) else float("nan")


def _expected_colours(dataset: str) -> list[int]:
    if dataset not in DATASETS:
        raise ValueError(f"the move-vs-fade score needs squares or shapes images, got {dataset!r}")
    return [0] if dataset == "squares" else list(COLOUR_CHANNELS)


def score_paths(
    frames: np.ndarray | torch.Tensor,
    dataset: str = "squares",
    value_range: tuple[float, float] | None = None,
    min_pixels: int = MIN_PIXELS,
    min_travel: float = MIN_TRAVEL,
) -> PathScores:
    """Score P paths of T frames: P x T x C x H x W floats or P x T x H x W x C uint8 (any
    layout gen.geometry.decode reads, with a leading path axis)."""
    colours = _expected_colours(dataset)
    paths, count = frames.shape[:2]
    if count < MIN_FRAMES:
        raise ValueError(f"a scored path needs at least {MIN_FRAMES} frames, got {count}")
    flat = frames.reshape(paths * count, *frames.shape[2:])
    objects = decode(flat, value_range, grey=dataset == "squares")
    valid = validate(objects, dataset).valid.reshape(paths, count)

    big = objects.pixels >= min_pixels
    slots = len(objects.colours)
    where = objects.image[big] * slots + objects.colour[big]
    size = paths * count * slots
    number = np.bincount(where, minlength=size).reshape(paths, count, slots)[..., colours]
    sums = [np.bincount(where, objects.centre[big, axis], minlength=size).reshape(paths, count, slots)
            for axis in (0, 1)]
    tracked = number == 1  # P x T x K
    centre = np.stack(sums, axis=-1)[..., colours, :]  # P x T x K x 2, the centre where tracked

    step = np.linalg.norm(np.diff(centre, axis=1), axis=-1)
    stepped = tracked[:, 1:] & tracked[:, :-1]
    net = np.linalg.norm(centre[:, -1] - centre[:, 0], axis=-1)  # P x K
    measurable = tracked[:, 0] & tracked[:, -1] & (net >= min_travel) & stepped.any(axis=1)
    ratio = np.where(stepped, step, np.nan) / np.where(measurable, net, np.nan)[:, None]
    with warnings.catch_warnings():  # an all-NaN row is an unmeasurable path: NaN by design
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_step = np.nanmean(np.nanmean(ratio, axis=1), axis=1)
        max_step = np.nanmax(np.nanmax(ratio, axis=1), axis=1)

    before, after = number[:, :-1], number[:, 1:]
    vanishes = ((before >= 1) & (after == 0)).any(axis=2).sum(axis=1)
    doubles = ((before <= 1) & (after >= 2)).any(axis=2).sum(axis=1)
    return PathScores(dataset, count, valid.mean(axis=1), tracked.all(axis=2).mean(axis=1),
                      mean_step, max_step, vanishes, doubles)


@torch.no_grad()
def valid_latents(task, n: int, dataset: str, seed: int, device: torch.device,
                  batch: int = SAMPLE_BATCH) -> tuple[torch.Tensor, float]:
    """n latents (CPU, seeded) whose samples are valid, and the share of draws that were.

    Scored paths run between valid samples, so the score measures what happens *between*
    good samples, not how often samples are good (the coverage metrics measure that)."""
    generator = torch.Generator().manual_seed(seed)
    kept, drawn, found = [], 0, 0
    while found < n:
        if drawn >= MAX_DRAWS_PER_ENDPOINT * n:
            raise InputError(f"only {found} of {drawn} samples were valid {dataset}; the model is too far "
                             f"from the data to find {n} valid path endpoints")
        latents = task.latents(batch, generator)
        images = to_uint8(task.sample(latents.to(device)))
        good = torch.from_numpy(validate(decode(images, grey=dataset == "squares"), dataset).valid)
        kept.append(latents[good])
        drawn, found = drawn + batch, found + int(good.sum())
    return torch.cat(kept)[:n], found / drawn


def score_segments(task, starts: torch.Tensor, ends: torch.Tensor, frames_per_segment: int, mode: str,
                   dataset: str, device: torch.device) -> PathScores:
    """Score the paths from each start latent to its end latent (N x D each), F + 1 frames
    per path, rendered and decoded a chunk of paths at a time to bound memory."""
    _expected_colours(dataset)
    t = (torch.arange(frames_per_segment + 1, dtype=torch.float64) / frames_per_segment)[:, None]
    per_chunk = max(1, SAMPLE_BATCH * 4 // (frames_per_segment + 1))
    parts = []
    for first in range(0, len(starts), per_chunk):
        path = interpolate(starts[first:first + per_chunk], ends[first:first + per_chunk], t, mode)
        images = torch.cat(list(sample_path(task, path, device)))  # T x N x C x H x W
        count, chunk = images.shape[:2]
        pixels = to_uint8(images.transpose(0, 1).flatten(0, 1))
        parts.append(score_paths(pixels.reshape(chunk, count, *pixels.shape[1:]), dataset))
    return PathScores.concatenate(parts)


def score_model(task, dataset: str, paths: int, frames_per_segment: int, mode: str, seed: int,
                device: torch.device) -> tuple[PathScores, float]:
    """Score `paths` seeded paths between valid samples; also the endpoints' valid rate."""
    if paths < 1:
        raise ValueError(f"path count must be positive, got {paths}")
    _expected_colours(dataset)
    latents, valid_rate = valid_latents(task, 2 * paths, dataset, seed, device)
    return score_segments(task, latents[:paths], latents[paths:], frames_per_segment, mode, dataset,
                          device), valid_rate


def _number(value: float) -> str:
    return "n/a" if value != value else f"{value:.4g}"


def format_scores(summary: dict) -> str:
    """A readable table of a summary, with what smooth motion would score beside it."""
    smooth = _number(summary["smooth_step"])
    rows = [
        ("valid frames", summary["valid_fraction"], "1"),
        ("tracked frames", summary["tracked_fraction"], "1"),
        ("mean step / net displacement", summary["mean_step"], smooth),
        ("max step / net displacement", summary["max_step"], smooth),
        ("  median over paths", summary["max_step_median"], smooth),
        ("vanishes per path", summary["vanishes_per_path"], "0"),
        ("doubles per path", summary["doubles_per_path"], "0"),
        *((f"paths: {name}", summary[f"{name}_fraction"], "1" if name == "move" else "0")
          for name in CLASSES),
    ]
    cells = [(name, _number(value), ideal) for name, value, ideal in rows]
    title = (f"{summary['dataset']}: {summary['paths']} paths of {summary['frames_per_path']} frames, "
             f"{summary['measured_paths']} with measurable motion")
    return "\n".join([title, *format_rows(cells, ("metric", "value", "smooth motion"))])
