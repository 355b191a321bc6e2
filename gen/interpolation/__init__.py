"""Latent interpolation: paths through latent space (paths), endpoints from images
(endpoints), the move-vs-fade score (score), and rendering and scoring a checkpoint's paths
(render: interpolate_checkpoint, what `gen interpolate` runs).

The path functions are imported here; interpolate_checkpoint is re-exported lazily
(PEP 562), so `from gen.interpolation import slerp` does not load the models, data and
metrics that rendering a checkpoint needs.
"""

from __future__ import annotations

import importlib

from gen.interpolation.paths import MODES, interpolate, keyframe_path, lerp, normlerp, slerp

_RENDER = ("InterpolationResult", "check_request", "interpolate_checkpoint")

__all__ = ["MODES", *_RENDER, "interpolate", "keyframe_path", "lerp", "normlerp", "slerp"]


def __getattr__(name: str):
    if name not in _RENDER:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.render"), name)
    globals()[name] = value
    return value
