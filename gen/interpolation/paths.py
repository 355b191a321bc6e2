"""Latent paths: lerp, slerp and the authors' norm-interpolated lerp, loops through
keyframes, and paths between the encodings of real images.

Latents are tensors whose last axis is the latent vector. The blend `t` (0 at `a`, 1 at `b`)
broadcasts against the other axes, so t of shape (T, 1) with a and b of shape (N, D) gives
T x N x D: T frames of N paths at once. At t = 0 and t = 1 every mode returns the endpoint
bit for bit, so a video passes exactly through its keyframes.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

MODES = ("slerp", "lerp", "normlerp")
PARALLEL_SIN = 1e-6  # below this sin(angle) the endpoints' directions are treated as (anti)parallel
SAMPLE_BATCH = 256


def _blend(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> tuple[torch.Tensor, ...]:
    """a, b and t broadcast to a common shape (..., D) in float64 (t as (..., 1))."""
    t = torch.as_tensor(t, dtype=torch.float64, device=a.device)[..., None]
    a, b = a.to(torch.float64), b.to(torch.float64)
    shape = torch.broadcast_shapes(a.shape, b.shape, t.shape)
    return a.expand(shape), b.expand(shape), t.expand(*shape[:-1], 1)


def _exact_ends(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor,
                dtype: torch.dtype) -> torch.Tensor:
    out = torch.where(t == 0, a, torch.where(t == 1, b, out))
    return out.to(dtype)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Straight line from a to b. For Gaussian latents the middle has a smaller norm than
    typical samples, which is why slerp and normlerp exist."""
    a64, b64, t64 = _blend(a, b, t)
    return _exact_ends(a64 + t64 * (b64 - a64), a64, b64, t64, a.dtype)


def _norm_line(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
    norm_a = a.norm(dim=-1, keepdim=True)
    norm_b = b.norm(dim=-1, keepdim=True)
    return norm_a, norm_b, (1 - t) * norm_a + t * norm_b


def _orthogonal(unit: torch.Tensor) -> torch.Tensor:
    """A unit vector orthogonal to each unit row: the least aligned basis vector, made
    orthogonal (deterministic, so an antiparallel path is the same every run)."""
    basis = torch.zeros_like(unit).scatter_(-1, unit.abs().argmin(dim=-1, keepdim=True), 1.0)
    other = basis - (basis * unit).sum(-1, keepdim=True) * unit
    return other / other.norm(dim=-1, keepdim=True).clamp_min(1e-300)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Direction along the great circle at constant angular speed, norm linear from |a| to
    |b| (White 2016's slerp when the norms match, so equal-norm endpoints stay on their sphere).

    Parallel directions follow the shared direction; antiparallel ones turn through a fixed
    orthogonal direction; a zero endpoint (no direction) or 1-D latents fall back to lerp.
    """
    a64, b64, t64 = _blend(a, b, t)
    norm_a, norm_b, norm_t = _norm_line(a64, b64, t64)
    unit_a = a64 / norm_a.clamp_min(1e-300)
    unit_b = b64 / norm_b.clamp_min(1e-300)
    cos = (unit_a * unit_b).sum(-1, keepdim=True).clamp(-1, 1)
    angle = torch.acos(cos)
    sin = torch.sin(angle)
    general = (torch.sin((1 - t64) * angle) * unit_a + torch.sin(t64 * angle) * unit_b) / sin.clamp_min(
        PARALLEL_SIN)
    parallel = unit_a
    antiparallel = torch.cos(torch.pi * t64) * unit_a + torch.sin(torch.pi * t64) * _orthogonal(unit_a)
    direction = torch.where(sin >= PARALLEL_SIN, general, torch.where(cos > 0, parallel, antiparallel))
    out = direction * norm_t
    fallback = (norm_a == 0) | (norm_b == 0)
    if a64.shape[-1] == 1:
        fallback = torch.ones_like(fallback)
    out = torch.where(fallback, a64 + t64 * (b64 - a64), out)
    return _exact_ends(out, a64, b64, t64, a.dtype)


def normlerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """The authors' helper (uber-research/CoordConv util.interpolate): blend linearly, then
    rescale to the linearly interpolated norm. Where the blend is the zero vector (equal and
    opposite endpoints, halfway) there is no direction to rescale, and it stays zero."""
    a64, b64, t64 = _blend(a, b, t)
    line = a64 + t64 * (b64 - a64)
    _, _, norm_t = _norm_line(a64, b64, t64)
    norm_line = line.norm(dim=-1, keepdim=True)
    out = torch.where(norm_line > 0, line * norm_t / norm_line.clamp_min(1e-300), line)
    return _exact_ends(out, a64, b64, t64, a.dtype)


INTERPOLATORS = {"slerp": slerp, "lerp": lerp, "normlerp": normlerp}


def interpolate(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float,
                mode: str = "slerp") -> torch.Tensor:
    """The mode's blend of a and b at t (see the module docstring for shapes)."""
    if mode not in INTERPOLATORS:
        raise ValueError(f"unknown interpolation mode {mode!r}; choose from {', '.join(MODES)}")
    return INTERPOLATORS[mode](a, b, t)


def keyframe_path(keyframes: torch.Tensor, frames_per_segment: int, mode: str = "slerp",
                  loop: bool = True) -> torch.Tensor:
    """Frames through K keyframes (K x ... x D) -> T x ... x D.

    loop=True: K segments, the last back to the first, K * F frames; frame i * F is keyframe
    i and the frame after the last would be frame 0, so a looping video has no seam.
    loop=False: K - 1 segments and the last keyframe, (K - 1) * F + 1 frames.
    """
    count = len(keyframes)
    if count < 2:
        raise ValueError(f"a path needs at least 2 keyframes, got {count}")
    if frames_per_segment < 1:
        raise ValueError(f"frames per segment must be positive, got {frames_per_segment}")
    t = torch.arange(frames_per_segment, dtype=torch.float64) / frames_per_segment
    t = t.view(-1, *([1] * (keyframes.dim() - 2)))
    segments = count if loop else count - 1
    frames = [interpolate(keyframes[i], keyframes[(i + 1) % count], t, mode) for i in range(segments)]
    if not loop:
        frames.append(keyframes[-1:])
    return torch.cat(frames)


def random_keyframes(task, keyframes: int, paths: int, seed: int) -> torch.Tensor:
    """K x N x D latents from the task's own distribution, drawn on the CPU from `seed` so
    the same seed gives the same path on any device."""
    generator = torch.Generator().manual_seed(seed)
    latents = task.latents(keyframes * paths, generator)
    return latents.view(keyframes, paths, *latents.shape[1:])


@torch.no_grad()
def sample_path(task, path: torch.Tensor, device: torch.device,
                batch: int = SAMPLE_BATCH) -> Iterator[torch.Tensor]:
    """Images along T x N x D latents, in chunks of whole frames (t x N x C x H x W, CPU,
    [-1, 1]), each chunk one batched forward pass of about `batch` latents."""
    frames, paths = path.shape[:2]
    step = max(1, batch // paths)
    for start in range(0, frames, step):
        chunk = path[start:start + step]
        images = task.sample(chunk.reshape(-1, *chunk.shape[2:]).to(device)).cpu()
        yield images.view(len(chunk), paths, *images.shape[1:])
