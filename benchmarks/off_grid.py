"""Where a squares GAN's invalid samples come from: squares drawn between two pixel positions.

Draws samples from a checkpoint, decodes them (gen.geometry) and splits the placed samples
(one object of >= 9 pixels: the position-only view) by whether the object's centroid lies
more than 0.25 px off the pixel grid on either axis, then reports validity in each group. A
generator that snaps squares to the grid is valid on the grid; its failures are the squares
in between, drawn a pixel too wide or tall.

For the tiled G, which draws every pixel as f(z, i, j), it also measures how wide and high
each square is *between* pixel centres: G's output along the pixel row and column nearest
the square's centre, at 8 points per pixel. A square drawn 9.3 px wide covers 10 pixels at 30% of
sub-pixel positions, so the spread of these widths is what costs validity off the grid.

Usage: python benchmarks/off_grid.py RUN_OR_CHECKPOINT [--n 3136] [--seed 7] [--threads 2]
"""

from __future__ import annotations

import argparse
from typing import Protocol

import numpy as np
import torch

from gen.checkpoint import load_task
from gen.geometry import Decoded, decode_samples

OFF_GRID_PX = 0.25
OVERSAMPLE = 8  # points per pixel where sub-pixel extents are measured
CHUNK = 256  # latents rendered at once: a fine row and column of 3136 would take over 1 GB


class Renderer(Protocol):
    """A generator that draws at any coordinates, as gen.gan.models.TiledGenerator does."""

    config: object  # with a .resolution

    def render(self, z: torch.Tensor, coords: torch.Tensor) -> torch.Tensor: ...


def off_grid_report(decoded: Decoded) -> dict[str, float]:
    """Validity overall and for placed squares off and on the pixel grid, from the decoded
    1-channel squares (gen.geometry.decode_samples)."""
    centres = decoded.placed_centres[:, 0]  # NaN where not placed
    placed = decoded.placed
    off = (np.abs(centres - np.round(centres)) > OFF_GRID_PX).any(axis=1) & placed
    on = placed & ~off

    def share(mask: np.ndarray) -> float:
        return float(decoded.valid[mask].mean()) if mask.any() else float("nan")

    return {"valid": float(decoded.valid.mean()), "placed": float(placed.mean()),
            "off_grid_share_of_placed": float(off.sum() / max(placed.sum(), 1)),
            "valid_off_grid": share(off), "valid_on_grid": share(on)}


def subpixel_extents(generator: Renderer, latents: torch.Tensor, centres: np.ndarray,
                     oversample: int = OVERSAMPLE) -> np.ndarray:
    """Width and height in pixels (N x 2) of the square `generator.render` draws for each
    latent, along the pixel row and column nearest its centre ((x, y) per sample, x the
    column), sampled at `oversample` points per pixel and thresholded at mid-range (0), as
    gen.geometry thresholds images."""
    last = generator.config.resolution - 1
    fine = torch.linspace(-1.0, 1.0, last * oversample + 1)
    nearest = torch.as_tensor(np.round(centres), dtype=torch.float32) * 2 / last - 1  # (x, y) coords
    across = fine.expand(len(latents), -1)
    row = torch.stack([nearest[:, 1:2].expand_as(across), across], -1)  # (i, j): the row through y
    column = torch.stack([across, nearest[:, 0:1].expand_as(across)], -1)
    coords = torch.stack([row, column], 1)  # N x 2 x points x (i, j)
    chunks = zip(latents.split(CHUNK), coords.split(CHUNK))
    with torch.no_grad():
        on = torch.cat([generator.render(z, grid)[..., 0] > 0 for z, grid in chunks])
    return on.sum(-1).numpy() / oversample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--n", type=int, default=3136)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task, checkpoint = load_task(args.checkpoint, torch.device("cpu"))
    latents = task.latents(args.n, torch.Generator().manual_seed(args.seed))
    with torch.no_grad():
        images = task.sample(latents)
    decoded = decode_samples(images, "squares")
    report = off_grid_report(decoded)
    print(f"{args.checkpoint} (step {checkpoint.step}, {args.n} samples, latent seed {args.seed})")
    for key, value in report.items():
        print(f"{key}: {value:.3f}")
    generator = task.generator_ema
    if hasattr(generator, "render"):
        placed = decoded.placed_centres[:, 0]
        keep = ~np.isnan(placed).any(axis=1)
        extents = subpixel_extents(generator, latents[torch.as_tensor(keep)], placed[keep])
        for axis, values in zip(("width", "height"), extents.T):
            low, median, high = np.percentile(values, [5, 50, 95])
            print(f"sub-pixel {axis} (px, placed samples): mean {values.mean():.3f}, sd {values.std():.3f}, "
                  f"5% {low:.3f}, median {median:.3f}, 95% {high:.3f}")


if __name__ == "__main__":
    main()
