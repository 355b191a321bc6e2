"""Latent interpolation: paths through latent space (paths), endpoints from images
(endpoints), the move-vs-fade score (score), and rendering and scoring a checkpoint's paths
(render: interpolate_checkpoint, what `gen interpolate` runs).

The path functions are imported here; interpolate_checkpoint is re-exported lazily
(PEP 562), so `from gen.interpolation import slerp` does not load the models, data and
metrics that rendering a checkpoint needs.
"""

from __future__ import annotations

from gen.interpolation.paths import MODES, interpolate, keyframe_path, lerp, normlerp, slerp
from gen.lazy import lazy_exports

_OWNERS = {"render": ("InterpolationResult", "check_request", "interpolate_checkpoint")}

__all__ = ["MODES", *_OWNERS["render"], "interpolate", "keyframe_path", "lerp", "normlerp", "slerp"]
__getattr__ = lazy_exports(__name__, _OWNERS)
