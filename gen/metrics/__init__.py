"""Where generated Not-so-Clevr objects land, measured against the exact data distribution.

Positions are the centroids of valid samples' objects (gen.geometry), rounded half up to the
pixel grid. The reference is computed from the dataset definition, not from a sample:
squares are uniform over the 56 x 56 centres 4..59; each shapes object is distributed as the
marginal of a uniform pair in 10..53 x 10..53 with the two centres >= 20 px apart.

Submodules, one job each:
- conventions: units, smoothing, the quadrant split and k of the k-NN metrics; read it first.
- reference: the exact position distributions, a seeded real sample drawn like the data,
  the coverage i.i.d. real samples reach, the quadrant mass of a reference.
- distances: histograms, JS and KL divergences, exact Wasserstein-1 (a scipy LP).
- knn: density and coverage (Naeem et al.).
- coverage: evaluate_samples and evaluate_decoded, which put all of the above together, and
  the layout of the dict they return.
- report: flatten_metrics, format_table, save_metrics.
- heatmap: mean images and the generated-versus-real heatmap picture.

The public names are re-exported here lazily (PEP 562), so `from gen.metrics import
save_metrics` loads report.py alone: the training loop imports it, and report.py does not
import scipy.
"""

from __future__ import annotations

from gen.lazy import lazy_exports

_OWNERS = {
    "conventions": ("COARSE", "KL_PSEUDOCOUNT", "KNN_K", "QUADRANTS"),
    "reference": ("OFFSET_ORIGIN", "expected_coverage", "offset_reference", "reference_quadrant_mass",
                  "reference_sample", "shapes_reference", "squares_reference"),
    "distances": ("coarsen", "histogram", "js_divergence", "kl_divergence", "wasserstein_grid"),
    "knn": ("density_coverage",),
    "coverage": ("evaluate_decoded", "evaluate_samples", "quadrant_mass"),
    "report": ("flatten_metrics", "format_table", "save_metrics"),
    "heatmap": ("heatmap_picture", "mean_image", "reference_mean_image", "save_heatmap"),
}
__all__ = sorted(name for names in _OWNERS.values() for name in names)
__getattr__ = lazy_exports(__name__, _OWNERS)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
