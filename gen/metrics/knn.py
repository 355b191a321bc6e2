"""Density and coverage (Naeem et al. 2020): k-NN metrics of generated points against a real sample."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

from gen.metrics.conventions import KNN_K

KD_TREE_MAX_DIMS = 8  # above this a k-d tree searches nearly everything: exact distances in chunks are faster
CHUNK = 1024


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = KNN_K,
                     sample_count: int | None = None) -> tuple[float, float]:
    """Naeem et al. density and coverage of `fake` points against `real` points; density
    averages over `sample_count` samples (default: as many as real points, so that when
    fewer fakes than that were placed the missing ones count as lying near no real point)."""
    if len(fake) == 0:
        return 0.0, 0.0
    if real.shape[1] <= KD_TREE_MAX_DIMS:
        radii = cKDTree(real).query(real, k=k + 1)[0][:, k]
        inside = cKDTree(fake).query_ball_point(real, radii, return_length=True)
    else:
        inside = _fakes_in_balls(torch.from_numpy(real).double(), torch.from_numpy(fake).double(), k)
    return float(inside.sum() / (k * (sample_count or len(real)))), float(np.mean(inside > 0))


def _fakes_in_balls(real: torch.Tensor, fake: torch.Tensor, k: int) -> np.ndarray:
    """For each real point, how many fakes lie within its distance to its k-th nearest real
    neighbour (high-dimensional features: brute force, CHUNK real points at a time)."""
    counts = []
    for rows in real.split(CHUNK):
        radii = torch.cdist(rows, real).kthvalue(k + 1, dim=1).values
        counts.append((torch.cdist(rows, fake) <= radii[:, None]).sum(dim=1))
    return torch.cat(counts).numpy()
