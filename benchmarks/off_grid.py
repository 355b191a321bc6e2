"""Where a squares GAN's invalid samples come from: squares drawn between two pixel positions.

Draws samples from a checkpoint, decodes them (gen.geometry) and splits the placed samples
(one object of >= 9 pixels: the position-only view) by whether the object's centroid lies
more than 0.25 px off the pixel grid on either axis, then reports validity in each group. A
generator that snaps squares to the grid is valid on the grid; its failures are the squares
in between, drawn a pixel too wide or tall (README: "Where samples fail").

Usage: python benchmarks/off_grid.py RUN_OR_CHECKPOINT [--n 3136] [--seed 7] [--threads 2]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from gen.checkpoint import load_task
from gen.geometry import decode_samples

OFF_GRID_PX = 0.25


def off_grid_report(images: torch.Tensor) -> dict[str, float]:
    """Validity overall and for placed squares off and on the pixel grid (1-channel squares)."""
    decoded = decode_samples(images, "squares")
    centres = decoded.placed_centres[:, 0]  # NaN where not placed
    placed = decoded.placed
    off = (np.abs(centres - np.round(centres)) > OFF_GRID_PX).any(axis=1) & placed
    on = placed & ~off

    def share(mask: np.ndarray) -> float:
        return float(decoded.valid[mask].mean()) if mask.any() else float("nan")

    return {"valid": float(decoded.valid.mean()), "placed": float(placed.mean()),
            "off_grid_share_of_placed": float(off.sum() / max(placed.sum(), 1)),
            "valid_off_grid": share(off), "valid_on_grid": share(on)}


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
    report = off_grid_report(images)
    print(f"{args.checkpoint} (step {checkpoint.step}, {args.n} samples, latent seed {args.seed})")
    for key, value in report.items():
        print(f"{key}: {value:.3f}")


if __name__ == "__main__":
    main()
