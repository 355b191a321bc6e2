"""Metrics out of the process: scalars for TensorBoard, a readable table, a JSON file.

Nothing here imports scipy (not even through its imports): the training loop imports this
module for flatten_metrics and save_metrics, and must stay light.
"""

from __future__ import annotations

import math
import os

from gen.data.notsoclevr import COLOURS
from gen.fileio import save_json
from gen.metrics.conventions import KNN_K, QUADRANTS
from gen.tables import format_rows


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
    rows += _position_only_rows(metrics)
    title = (f"{metrics['dataset']}: {metrics['n_samples']} samples, {metrics['n_valid']} valid; "
             f"real data: exact, or a seeded sample (seed {metrics['seed']}) of the same count")
    return "\n".join([title, *format_rows(rows, ("metric", "generated", "real data"))])


def _position_only_rows(metrics: dict) -> list[tuple[str, str, str]]:
    """The position-only view in brief: placed samples, and the coverage and JS of where
    they put objects (every number is in the JSON)."""
    view = metrics.get("position_only")
    if view is None:
        return []
    sections = [("", view)]
    if metrics["dataset"] == "shapes":
        sections = [("all objects: ", view), *((f"{c} object: ", view[c]) for c in COLOURS),
                    ("offset: ", view["offset"])]
    rows = [("position only (any shape, any size)", "", ""),
            ("  placed fraction", _number(view["placed_fraction"]), "1")]
    for prefix, section in sections:
        rows += [(f"  {prefix}coverage ratio", _number(section["coverage_ratio"]), "1"),
                 (f"  {prefix}JS divergence (bits)", _number(section["js_divergence"]),
                  _number(section["real_sample"]["js_divergence"]))]
    rows += [("  square fraction of placed objects", _number(view["square_fraction"]),
              _number(view["square_fraction_reference"])),
             ("  mean pixels of placed objects", _number(view["mean_pixels"]),
              _number(view["mean_pixels_reference"]))]
    return rows


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
