"""Density and coverage (Naeem et al. 2020): k-NN metrics of generated points against a real sample."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from gen.metrics.conventions import KNN_K


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = KNN_K) -> tuple[float, float]:
    """Naeem et al. density and coverage of `fake` points against as many `real` points;
    fewer fakes than reals means the missing ones lie near no real point."""
    if len(fake) == 0:
        return 0.0, 0.0
    radii = cKDTree(real).query(real, k=k + 1)[0][:, k]
    inside = cKDTree(fake).query_ball_point(real, radii, return_length=True)
    return float(inside.sum() / (k * len(real))), float(np.mean(inside > 0))
