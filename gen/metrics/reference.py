"""The exact distributions of object positions in the Not-so-Clevr sets, from the dataset
definition rather than from a sample, and what i.i.d. real samples reach against them."""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import signal

from gen.data.notsoclevr import (
    CANVAS,
    QUADRANT_EDGE,
    SHAPES_MAX,
    SHAPES_MIN,
    SHAPES_MIN_DISTANCE,
    SQUARE_MAX,
    SQUARE_MIN,
)

OFFSET_ORIGIN = CANVAS - 1  # offsets (dx, dy) in -63..63 are stored at index d + 63


@functools.cache
def squares_reference() -> np.ndarray:
    """Probability of each canvas pixel [y, x] being a square's centre: uniform on 4..59."""
    p = np.zeros((CANVAS, CANVAS))
    p[SQUARE_MIN : SQUARE_MAX + 1, SQUARE_MIN : SQUARE_MAX + 1] = 1
    return _frozen(p / p.sum())


def _too_close_kernel() -> np.ndarray:
    reach = math.ceil(SHAPES_MIN_DISTANCE)
    d = np.arange(-reach, reach + 1)
    return (d[:, None] ** 2 + d[None, :] ** 2 < SHAPES_MIN_DISTANCE**2).astype(float)


@functools.cache
def shapes_reference() -> np.ndarray:
    """Probability of each pixel [y, x] being one shapes object's centre (either colour).

    The pair is uniform over 10..53 squared minus the pairs closer than 20 px, so a centre's
    weight is the number of partner centres far enough from it.
    """
    grid = np.zeros((CANVAS, CANVAS))
    grid[SHAPES_MIN : SHAPES_MAX + 1, SHAPES_MIN : SHAPES_MAX + 1] = 1
    close = np.rint(signal.convolve2d(grid, _too_close_kernel(), mode="same"))
    p = grid * (grid.sum() - close)
    return _frozen(p / p.sum())


@functools.cache
def offset_reference() -> np.ndarray:
    """Probability of the offset blue - red = (dx, dy), stored at [dy + 63, dx + 63]."""
    side = SHAPES_MAX - SHAPES_MIN + 1
    d = np.arange(-OFFSET_ORIGIN, OFFSET_ORIGIN + 1)
    ways = np.clip(side - np.abs(d), 0, None).astype(float)
    far = d[:, None] ** 2 + d[None, :] ** 2 >= SHAPES_MIN_DISTANCE**2
    p = ways[:, None] * ways[None, :] * far
    return _frozen(p / p.sum())


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def reference_sample(dataset: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """n x K x 2 integer centres drawn exactly as the dataset definition draws them."""
    if dataset == "squares":
        return rng.integers(SQUARE_MIN, SQUARE_MAX + 1, (n, 1, 2))
    centres = np.empty((n, 2, 2), dtype=np.int64)
    todo = np.arange(n)
    while len(todo):
        centres[todo] = rng.integers(SHAPES_MIN, SHAPES_MAX + 1, (len(todo), 2, 2))
        gap = np.linalg.norm(centres[todo, 0] - centres[todo, 1], axis=1)
        todo = todo[gap < SHAPES_MIN_DISTANCE]
    return centres


def expected_coverage(reference: np.ndarray, n: int, per_sample: int = 1) -> float:
    """Expected share of support cells that n real samples hit, each placing `per_sample`
    objects on distinct cells (so a cell is hit by one sample with chance per_sample * p)."""
    p = reference[reference > 0]
    return float(np.mean(1 - (1 - per_sample * p) ** n))


def reference_quadrant_mass(reference: np.ndarray) -> list[float]:
    right = np.arange(reference.shape[1]) > QUADRANT_EDGE
    bottom = np.arange(reference.shape[0]) > QUADRANT_EDGE
    return [float(reference[np.ix_(b, r)].sum()) for b in (~bottom, bottom) for r in (~right, right)]
