"""Seconds per training step of the default conv GAN and CoordConv GAN, side by side.

Times `GANTask.train_step` in-process on real batches (after warm-up steps), for `gen train
gan` and `gen train gan --coordconv` with their default settings on squares or shapes,
and projects the wall time of each default run (steps x seconds per step; evaluation not
included). On CPU it keeps freed host memory as `gen.training.train` does.

Usage: python benchmarks/bench_gan_step.py [--data squares|shapes] [--steps 60] [--threads 2]
       [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch
from timing import timing_device

from gen.configs import Preset
from gen.data import make_shapes, make_squares
from gen.data.batches import RunDataset
from gen.gan.config import GANConfig, gan_preset
from gen.gan.task import GANTask
from gen.images import to_model_range

# What `gen train gan` and `gen train gan --coordconv` train (the same presets on every data set).
MODELS = {"conv (gen train gan)": gan_preset(),
          "CoordConv (gen train gan --coordconv)": gan_preset(coordconv=True)}


def seconds_per_step(preset: Preset[GANConfig], data: RunDataset, steps: int, batch_size: int,
                     device: torch.device) -> float:
    """The model sized for the data (64 x 64 Not-so-Clevr images), as a run sizes it."""
    task = GANTask(preset.model.for_data(data.channels, 64), device)
    images = to_model_range(data.train_images()).to(device)
    order = torch.randint(len(images), (steps + 5, batch_size), generator=torch.Generator().manual_seed(0))
    for step in range(5):  # warm-up: allocator, kernels, lazy R1 on step 0
        task.train_step(images[order[step]], step)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for step in range(5, steps + 5):
        task.train_step(images[order[step]], step)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("squares", "shapes"), default="squares")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = timing_device(args.device, args.threads)

    generated = make_squares() if args.data == "squares" else make_shapes(2048, seed=0)
    data = RunDataset(args.data, generated.images.shape[1], generated=generated)

    print(f"{args.data}: {args.steps} steps, batch {args.batch_size}, {args.threads} threads, {device}")
    print("| model | s / step | default steps | projected minutes | time per step / conv's |")
    print("|---|---:|---:|---:|---:|")
    conv = None
    for name, preset in MODELS.items():
        seconds = seconds_per_step(preset, data, args.steps, args.batch_size, device)
        conv = conv or seconds
        default_steps = preset.schedule.steps
        print(f"| {name} | {seconds:.4f} | {default_steps} | {seconds * default_steps / 60:.1f} | "
              f"{seconds / conv:.2f}x |")


if __name__ == "__main__":
    main()
