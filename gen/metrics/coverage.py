"""Every metric of a generated batch, put together: evaluate_samples and evaluate_decoded.

For shapes the top level pools both objects' centres (two per valid sample); `red` and
`blue` hold the same metrics per colour, and `offset` the metrics of blue - red (no W1 or
quadrants there: the offset grid is 127 x 127 and the LP would dominate the run time).
Every distribution also gets `real_sample`: the same noisy numbers for a seeded real sample
of the same count, which is what "good" looks like at that count (JS of 3136 real samples
over 3136 centres is about 0.25 bits, not 0).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from gen.data.notsoclevr import CANVAS, COLOURS, KINDS, QUADRANT_EDGE, SHAPES_MIN_DISTANCE
from gen.geometry import DEFAULT_TOLERANCE, IDEAL_PIXELS, REASONS, Decoded, Tolerance, decode_samples
from gen.metrics.distances import coarsen, histogram, js_divergence, kl_divergence, wasserstein_grid
from gen.metrics.knn import density_coverage
from gen.metrics.reference import (
    OFFSET_ORIGIN,
    expected_coverage,
    offset_reference,
    reference_quadrant_mass,
    reference_sample,
    shapes_reference,
    squares_reference,
)


def quadrant_mass(positions: np.ndarray) -> list[float]:
    """Share of positions in top-left, top-right, bottom-left, bottom-right (x, y > 32 is
    right, bottom)."""
    if len(positions) == 0:
        return [math.nan] * 4
    quadrant = 2 * (positions[:, 1] > QUADRANT_EDGE) + (positions[:, 0] > QUADRANT_EDGE)
    return (np.bincount(quadrant, minlength=4) / len(positions)).tolist()


def _round(centres: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(centres + 0.5), 0, CANVAS - 1).astype(np.int64)


def _divergences(counts: np.ndarray, reference: np.ndarray, with_wasserstein: bool) -> dict[str, float]:
    """JS and KL at full and coarse resolution (and W1) of a histogram; NaN when it is empty."""
    names = ["js_divergence", "js_divergence_coarse", "kl_divergence", "kl_divergence_coarse"]
    names += ["wasserstein"] if with_wasserstein else []
    if counts.sum() == 0:
        return dict.fromkeys(names, math.nan)
    coarse, coarse_reference = coarsen(counts), coarsen(reference)
    out = {
        "js_divergence": js_divergence(counts, reference),
        "js_divergence_coarse": js_divergence(coarse, coarse_reference),
        "kl_divergence": kl_divergence(reference, counts),
        "kl_divergence_coarse": kl_divergence(coarse_reference, coarse),
    }
    if with_wasserstein:
        out["wasserstein"] = wasserstein_grid(counts, reference)
    return out


def _distribution(
    positions: np.ndarray,
    real: np.ndarray,
    reference: np.ndarray,
    n_samples: int,
    rng: np.random.Generator,
    per_sample: int = 1,
    origin: int = 0,
    on_canvas: bool = True,
    wasserstein: bool = True,
) -> dict:
    """Coverage, divergences, W1 and quadrants (canvas positions only; W1 unless
    `wasserstein` is off) and k-NN metrics of generated positions; `real_sample` holds the
    same for the real sample where they are noisy."""
    counts = histogram(positions, reference.shape, origin)
    real_counts = histogram(real, reference.shape, origin)
    support = reference > 0
    coverage = float(np.mean(counts[support] > 0))
    expected = expected_coverage(reference, n_samples, per_sample)
    out = {
        "position_coverage": coverage,
        "expected_real_coverage": expected,
        "coverage_ratio": coverage / expected,
        **_divergences(counts, reference, on_canvas and wasserstein),
    }
    if on_canvas:
        out["quadrant_mass"] = quadrant_mass(positions)
        out["heldout_quadrant_mass"] = out["quadrant_mass"][3]
        out["quadrant_mass_reference"] = reference_quadrant_mass(reference)
    jitter = rng.uniform(-0.5, 0.5, (len(real) + len(positions), 2))
    out["density"], out["coverage_knn"] = density_coverage(
        real + jitter[: len(real)], positions + jitter[len(real) :]
    )
    out["real_sample"] = {
        "position_coverage": float(np.mean(real_counts[support] > 0)),
        **_divergences(real_counts, reference, on_canvas and wasserstein),
    }
    return out


def evaluate_decoded(decoded: Decoded, seed: int = 0) -> dict:
    """All metrics of a decoded batch; see evaluate_samples."""
    n = len(decoded)
    valid, placed = decoded.valid, decoded.placed
    out: dict = {
        "dataset": decoded.dataset,
        "n_samples": n,
        "n_valid": int(valid.sum()),
        "valid_fraction": float(valid.mean()),
        "invalid": {reason: float(np.mean(decoded.reason == code))
                    for code, reason in enumerate(REASONS) if code},
        "seed": seed,
    }
    out.update(_positions(decoded.dataset, decoded.centres[valid], n, seed))
    if decoded.dataset == "shapes":
        for slot, colour in enumerate(COLOURS):
            out[colour]["square_fraction"] = float(np.mean(decoded.kinds[valid, slot] == 0)) if valid.any() \
                else math.nan
    out["position_only"] = {
        "n_placed": int(placed.sum()),
        "placed_fraction": float(placed.mean()),
        **_positions(decoded.dataset, decoded.placed_centres[placed], n, seed, wasserstein=False),
        **_kinds(decoded),
    }
    return out


def _kinds(decoded: Decoded) -> dict:
    """What the placed objects are, beside what real data holds: the share called squares and
    the mean pixel count. A generator that draws one shape between a square (81 px) and a
    circle (69) shows as few squares of about 75 px."""
    placed = decoded.placed
    kinds, pixels = decoded.placed_kinds[placed], decoded.placed_pixels[placed]
    squares_only = decoded.dataset == "squares"
    square = KINDS.index("square")
    return {
        "square_fraction": float(np.mean(kinds == square)) if placed.any() else math.nan,
        "square_fraction_reference": 1.0 if squares_only else 0.5,
        "mean_pixels": float(pixels.mean()) if placed.any() else math.nan,
        "mean_pixels_reference": float(IDEAL_PIXELS[square] if squares_only else np.mean(IDEAL_PIXELS)),
    }


def _positions(dataset: str, centres: np.ndarray, n: int, seed: int, wasserstein: bool = True) -> dict:
    """The distribution metrics of the centres (M x K x 2) of M of n samples against the
    dataset's reference, a seeded real sample of n beside them. The random stream is
    started afresh from `seed`, so the strict and the position-only views of the same
    positions score the same."""
    rng = np.random.default_rng(seed)
    real = reference_sample(dataset, n, rng)
    positions = _round(centres)
    if dataset == "squares":
        return _distribution(positions[:, 0], real[:, 0], squares_reference(), n, rng,
                             wasserstein=wasserstein)
    reference = shapes_reference()
    out = _distribution(positions.reshape(-1, 2), real.reshape(-1, 2), reference, n, rng, per_sample=2,
                        wasserstein=wasserstein)
    for slot, colour in enumerate(COLOURS):
        out[colour] = _distribution(positions[:, slot], real[:, slot], reference, n, rng,
                                    wasserstein=wasserstein)
    offsets = positions[:, 1] - positions[:, 0]
    real_offsets = real[:, 1] - real[:, 0]
    distance = np.linalg.norm(offsets, axis=1)
    grid = np.arange(-OFFSET_ORIGIN, OFFSET_ORIGIN + 1)
    reference_distance = np.hypot(grid[None, :], grid[:, None])
    out["offset"] = _distribution(offsets, real_offsets, offset_reference(), n, rng,
                                  origin=OFFSET_ORIGIN, on_canvas=False)
    out["offset"].update({
        "mean_distance": float(distance.mean()) if len(distance) else math.nan,
        "mean_distance_reference": float(np.sum(offset_reference() * reference_distance)),
        "too_close_fraction": float(np.mean(distance < SHAPES_MIN_DISTANCE)) if len(distance) else math.nan,
    })
    return out


def evaluate_samples(
    images: np.ndarray | torch.Tensor,
    dataset: str = "squares",
    seed: int = 0,
    value_range: tuple[float, float] | None = None,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> dict:
    """Decode a batch of generated images and measure it against the dataset definition.

    images: torch or numpy, N x C x H x W floats in [-1, 1] or [0, 1] (pass value_range if
    ambiguous) or N x H x W x C uint8. seed fixes the real sample used for k-NN metrics and
    the real-data baselines. Returns a JSON-ready dict (nested for shapes: pooled positions
    at the top, then `red`, `blue` and `offset`); flatten_metrics turns it into scalars.
    """
    return evaluate_decoded(decode_samples(images, dataset, value_range, tolerance), seed)
