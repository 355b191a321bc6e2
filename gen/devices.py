"""Which torch device a run or command uses."""

from __future__ import annotations

import ctypes
import hashlib

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


def restore_generator(generator: torch.Generator, state: torch.Tensor) -> None:
    """Set a random generator's saved state. A state saved on another device type (a CUDA
    run sampled or resumed on CPU) has another layout, and its stream cannot carry over;
    the generator is then seeded from a digest of that state, so the result stays
    reproducible."""
    if state.numel() == generator.get_state().numel():
        generator.set_state(state)
    else:
        digest = hashlib.sha256(state.cpu().numpy().tobytes()).digest()
        generator.manual_seed(int.from_bytes(digest[:8], "little"))


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 1 << 30


def keep_freed_host_memory() -> bool:
    """Let glibc malloc reuse freed host memory instead of returning it to the system.

    By default glibc serves blocks over a few MB with fresh mmap pages and gives them back on
    free, so every activation of a CPU training step page-faults anew (PyTorch's CPU
    allocator does no caching; its tuning guide suggests jemalloc or tcmalloc for this).
    Raising the mmap and trim thresholds keeps them in the heap. Returns whether it applied
    (False off glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    applied = [libc.mallopt(parameter, _KEEP_BYTES) for parameter in (_M_MMAP_THRESHOLD, _M_TRIM_THRESHOLD)]
    return all(applied)
