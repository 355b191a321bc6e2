"""Where generated Not-so-Clevr objects land, measured against the exact data distribution.

Positions are the centroids of valid samples' objects (gen.geometry), rounded half up to the
pixel grid. The reference is computed from the dataset definition, not from a sample:
squares are uniform over the 56 x 56 centres 4..59; each shapes object is distributed as the
marginal of a uniform pair in 10..53 x 10..53 with the two centres >= 20 px apart.

For shapes the top level pools both objects' centres (two per valid sample); `red` and
`blue` hold the same metrics per colour, and `offset` the metrics of blue - red (no W1 or
quadrants there: the offset grid is 127 x 127 and the LP would dominate the run time).
Every distribution also gets `real_sample`: the same noisy numbers for a seeded real sample
of the same count, which is what "good" looks like at that count (JS of 3136 real samples
over 3136 centres is about 0.25 bits, not 0).

Conventions, in one place:
- JS and KL divergences are in bits. JS needs no smoothing (0 = identical, 1 = disjoint).
  KL is KL(reference || generated), the mode-dropping direction, with add-one (Laplace)
  smoothing of the generated counts over the reference support. Both are also given on a
  coarse grid of 8 x 8 pixel blocks.
- Wasserstein-1 is exact, with the L1 (Manhattan) ground distance in pixels: a min-cost flow
  on the 4-neighbour pixel grid, solved as a linear program (scipy HiGHS).
- Quadrants split at 32 like the quadrant split: right is x > 32, bottom is y > 32, so the
  held-out quadrant of `gen data make squares --split quadrant` is bottom-right.
- coverage_ratio divides position coverage by the coverage i.i.d. real samples reach with
  the same number of samples (exact: the mean over centres of 1 - (1 - p)^n). Invalid
  samples count in n, so a generator is penalised for them. A file holding every square
  once is not i.i.d. and scores about 1 / (1 - 1/e) = 1.58.
- Density and coverage (Naeem et al. 2020, k = 5) compare the positions with a seeded real
  sample of the same count; both get uniform jitter in [-0.5, 0.5) so that grid ties do not
  zero the k-NN radii, and invalid samples are fakes that lie near no real point.
- Values that need a valid sample are NaN when there is none; save_metrics writes them as null.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np
import torch
from PIL import Image, ImageDraw
from scipy import signal, sparse
from scipy.optimize import linprog
from scipy.spatial import cKDTree

from gen.data.notsoclevr import (
    CANVAS,
    CIRCLE_RADIUS,
    COLOUR_CHANNELS,
    COLOURS,
    QUADRANT_EDGE,
    SHAPES_MAX,
    SHAPES_MIN,
    SHAPES_MIN_DISTANCE,
    SQUARE_HALF,
    SQUARE_MAX,
    SQUARE_MIN,
)
from gen.fileio import save_json
from gen.geometry import (
    DEFAULT_TOLERANCE,
    REASONS,
    Decoded,
    Tolerance,
    decode_samples,
    layout_of,
    value_range_of,
)
from gen.images import save_png

COARSE = 8
KNN_K = 5
KL_PSEUDOCOUNT = 1.0
QUADRANTS = ("top_left", "top_right", "bottom_left", "bottom_right")
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


def histogram(positions: np.ndarray, shape: tuple[int, int], origin: int = 0) -> np.ndarray:
    """Counts [y, x] of integer (x, y) positions, shifted by origin."""
    flat = (positions[:, 1] + origin) * shape[1] + positions[:, 0] + origin
    return np.bincount(flat, minlength=shape[0] * shape[1]).reshape(shape).astype(float)


def coarsen(grid: np.ndarray, block: int = COARSE) -> np.ndarray:
    """Sum over block x block cells, padding the far edges with zeros."""
    rows, cols = (-(-size // block) * block for size in grid.shape)
    padded = np.zeros((rows, cols))
    padded[: grid.shape[0], : grid.shape[1]] = grid
    return padded.reshape(rows // block, block, cols // block, block).sum(axis=(1, 3))


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits between two histograms (normalised here)."""
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    return float(sum(0.5 * np.sum(a[a > 0] * np.log2(a[a > 0] / m[a > 0])) for a in (p, q)))


def kl_divergence(reference: np.ndarray, counts: np.ndarray, pseudocount: float = KL_PSEUDOCOUNT) -> float:
    """KL(reference || generated) in bits, generated counts smoothed by adding `pseudocount`
    to every cell of the reference support (mass off the support stays in the total)."""
    support = reference > 0
    q = (counts + pseudocount * support) / (counts.sum() + pseudocount * support.sum())
    p = reference / reference.sum()
    return float(np.sum(p[support] * np.log2(p[support] / q[support])))


@functools.cache
def _grid_lipschitz_constraints(height: int, width: int) -> sparse.csr_matrix:
    """Rows phi_u - phi_v <= 1 and phi_v - phi_u <= 1 for every 4-neighbour edge (u, v)."""
    ids = np.arange(height * width).reshape(height, width)
    u = np.concatenate([ids[:, :-1].ravel(), ids[:-1].ravel()])
    v = np.concatenate([ids[:, 1:].ravel(), ids[1:].ravel()])
    m = len(u)
    rows = np.concatenate([np.arange(m), np.arange(m), m + np.arange(m), m + np.arange(m)])
    cols = np.concatenate([u, v, u, v])
    ones = np.ones(m)
    values = np.concatenate([ones, -ones, -ones, ones])
    return sparse.csr_matrix((values, (rows, cols)), shape=(2 * m, height * width))


def wasserstein_grid(p: np.ndarray, q: np.ndarray) -> float:
    """Exact W1 with the L1 ground distance between two histograms on the same pixel grid.

    Kantorovich duality: the largest sum of phi * (p - q) over potentials phi that change by
    at most 1 between neighbouring pixels. Solved on the box around both supports, which
    holds every shortest L1 path between them.
    """
    diff = p / p.sum() - q / q.sum()
    rows, cols = np.nonzero((p > 0) | (q > 0))
    diff = diff[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    if diff.size == 1:
        return 0.0
    constraints = _grid_lipschitz_constraints(*diff.shape)
    bounds = [(0, 0)] + [(None, None)] * (diff.size - 1)  # potentials are defined up to a constant
    result = linprog(-diff.ravel(), A_ub=constraints, b_ub=np.ones(constraints.shape[0]),
                     bounds=bounds, method="highs-ds")
    if not result.success:
        raise RuntimeError(f"Wasserstein linear program failed: {result.message}")
    return max(0.0, float(-result.fun))  # the solver's tolerance can leave -0.0 or -1e-16


def expected_coverage(reference: np.ndarray, n: int, per_sample: int = 1) -> float:
    """Expected share of support cells that n real samples hit, each placing `per_sample`
    objects on distinct cells (so a cell is hit by one sample with chance per_sample * p)."""
    p = reference[reference > 0]
    return float(np.mean(1 - (1 - per_sample * p) ** n))


def quadrant_mass(positions: np.ndarray) -> list[float]:
    """Share of positions in top-left, top-right, bottom-left, bottom-right (x, y > 32 is
    right, bottom)."""
    if len(positions) == 0:
        return [math.nan] * 4
    quadrant = 2 * (positions[:, 1] > QUADRANT_EDGE) + (positions[:, 0] > QUADRANT_EDGE)
    return (np.bincount(quadrant, minlength=4) / len(positions)).tolist()


def reference_quadrant_mass(reference: np.ndarray) -> list[float]:
    right = np.arange(reference.shape[1]) > QUADRANT_EDGE
    bottom = np.arange(reference.shape[0]) > QUADRANT_EDGE
    return [float(reference[np.ix_(b, r)].sum()) for b in (~bottom, bottom) for r in (~right, right)]


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = KNN_K) -> tuple[float, float]:
    """Naeem et al. density and coverage of `fake` points against as many `real` points;
    fewer fakes than reals means the missing ones lie near no real point."""
    if len(fake) == 0:
        return 0.0, 0.0
    radii = cKDTree(real).query(real, k=k + 1)[0][:, k]
    inside = cKDTree(fake).query_ball_point(real, radii, return_length=True)
    return float(inside.sum() / (k * len(real))), float(np.mean(inside > 0))


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
) -> dict:
    """Coverage, divergences, W1 and quadrants (canvas positions only) and k-NN metrics of
    generated positions; `real_sample` holds the same for the real sample where they are noisy."""
    counts = histogram(positions, reference.shape, origin)
    real_counts = histogram(real, reference.shape, origin)
    support = reference > 0
    coverage = float(np.mean(counts[support] > 0))
    expected = expected_coverage(reference, n_samples, per_sample)
    out = {
        "position_coverage": coverage,
        "expected_real_coverage": expected,
        "coverage_ratio": coverage / expected,
        **_divergences(counts, reference, on_canvas),
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
        **_divergences(real_counts, reference, on_canvas),
    }
    return out


def evaluate_decoded(decoded: Decoded, seed: int = 0) -> dict:
    """All metrics of a decoded batch; see evaluate_samples."""
    n = len(decoded)
    rng = np.random.default_rng(seed)
    real = reference_sample(decoded.dataset, n, rng)
    valid = decoded.valid
    out: dict = {
        "dataset": decoded.dataset,
        "n_samples": n,
        "n_valid": int(valid.sum()),
        "valid_fraction": float(valid.mean()),
        "invalid": {reason: float(np.mean(decoded.reason == code))
                    for code, reason in enumerate(REASONS) if code},
        "seed": seed,
    }
    positions = _round(decoded.centres[valid])
    if decoded.dataset == "squares":
        out.update(_distribution(positions[:, 0], real[:, 0], squares_reference(), n, rng))
        return out
    reference = shapes_reference()
    out.update(_distribution(positions.reshape(-1, 2), real.reshape(-1, 2), reference, n, rng,
                             per_sample=2))
    for slot, colour in enumerate(COLOURS):
        out[colour] = _distribution(positions[:, slot], real[:, slot], reference, n, rng)
        out[colour]["square_fraction"] = float(np.mean(decoded.kinds[valid, slot] == 0)) if valid.any() \
            else math.nan
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


def flatten_metrics(metrics: dict, prefix: str = "") -> dict[str, float]:
    """Numbers only, keyed 'red/coverage_ratio', 'quadrant_mass/top_left', ...: for TensorBoard."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, f"{name}/"))
        elif isinstance(value, list):
            labels = QUADRANTS if key.startswith("quadrant_mass") else range(len(value))
            flat.update({f"{name}/{label}": float(v) for label, v in zip(labels, value, strict=True)})
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def _number(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def _section_rows(section: dict) -> list[tuple[str, str, str]]:
    """(metric, generated, real data) rows of one distribution's metrics."""
    real = section["real_sample"]
    rows = [
        ("position coverage", _number(section["position_coverage"]),
         f"{_number(section['expected_real_coverage'])} expected"),
        ("coverage ratio", _number(section["coverage_ratio"]), "1"),
        ("JS divergence (bits)", _number(section["js_divergence"]), _number(real["js_divergence"])),
        ("JS, 8 px blocks", _number(section["js_divergence_coarse"]), _number(real["js_divergence_coarse"])),
        ("KL(real || gen) (bits)", _number(section["kl_divergence"]), _number(real["kl_divergence"])),
        ("KL, 8 px blocks", _number(section["kl_divergence_coarse"]), _number(real["kl_divergence_coarse"])),
    ]
    if "wasserstein" in section:
        rows.append(("Wasserstein-1 (px, L1)", _number(section["wasserstein"]), _number(real["wasserstein"])))
        generated, real_mass = (" ".join("-" if math.isnan(v) else f"{v:.3f}" for v in section[key])
                                for key in ("quadrant_mass", "quadrant_mass_reference"))
        rows.append(("quadrant mass TL TR BL BR", generated, real_mass))
    rows += [
        (f"density (k={KNN_K})", _number(section["density"]), "about 1"),
        (f"coverage k-NN (k={KNN_K})", _number(section["coverage_knn"]), f"about {1 - 0.5**KNN_K:.2f}"),
    ]
    return rows


def format_table(metrics: dict) -> str:
    """A readable table: generated numbers beside what real data gets at the same count
    (exact expectations, or the seeded real sample where only a sample can say)."""
    rows = [("valid fraction", _number(metrics["valid_fraction"]), "1")]
    rows += [(f"  invalid: {reason}", _number(share), "0") for reason, share in metrics["invalid"].items()]
    if metrics["dataset"] == "squares":
        rows += _section_rows(metrics)
    else:
        for heading, section in [("all objects", metrics), *((f"{c} object", metrics[c]) for c in COLOURS)]:
            rows += [(heading, "", "")] + [("  " + name, *values) for name, *values in _section_rows(section)]
            if section is not metrics:
                rows.append(("  square fraction", _number(section["square_fraction"]), "0.5"))
        offset = metrics["offset"]
        rows += [("offset blue - red", "", "")]
        rows += [("  " + name, *values) for name, *values in _section_rows(offset)]
        rows += [("  mean distance (px)", _number(offset["mean_distance"]),
                  _number(offset["mean_distance_reference"])),
                 ("  closer than 20 px", _number(offset["too_close_fraction"]), "0")]
    width = max(len(name) for name, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    lines = [f"{metrics['dataset']}: {metrics['n_samples']} samples, {metrics['n_valid']} valid; "
             f"real data: exact, or a seeded sample (seed {metrics['seed']}) of the same count",
             f"{'metric':<{width}}  {'generated':>{value_width}}  real data"]
    lines += [f"{name:<{width}}  {value:>{value_width}}  {real}".rstrip() for name, value, real in rows]
    return "\n".join(lines)


def _json_ready(value):
    if isinstance(value, dict):
        return {key: _json_ready(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def save_metrics(path: str | os.PathLike, metrics: dict) -> None:
    """Write metrics as JSON atomically, NaN (undefined) as null."""
    save_json(path, _json_ready(metrics))


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
        raise ValueError("shapes images need 3 channels (red and blue objects), got 1")
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
