"""Which torch device a run or command uses."""

from __future__ import annotations

import torch

from gen.errors import InputError


def resolve_device(name: str) -> torch.device:
    """auto (cuda when there is one), cpu or cuda[:N]; InputError when cuda is asked for
    but absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but no CUDA device is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise InputError(f"unknown device {name!r}; choose auto, cpu or cuda")
    return torch.device(name)
