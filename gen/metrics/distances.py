"""Distances between position histograms on the pixel grid: JS and KL divergences in bits
and the exact Wasserstein-1 with the L1 ground distance (see conventions.py)."""

from __future__ import annotations

import functools

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from gen.metrics.conventions import COARSE, KL_PSEUDOCOUNT


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
