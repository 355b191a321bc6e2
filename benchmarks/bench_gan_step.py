"""Seconds per training step of the default conv GAN and CoordConv GAN, side by side.

Times `GANTask.train_step` in-process on real squares batches (after warm-up steps), for
`gen train gan` and `gen train gan --coordconv` with their default settings, and projects
the wall time of each default run (steps x seconds per step; evaluation not included).
On CPU it keeps freed host memory as `gen.training.train` does.

Usage: python benchmarks/bench_gan_step.py [--steps 60] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch
from timing import timing_device

from gen.configs import Preset
from gen.data import make_squares
from gen.gan.config import GANConfig, gan_preset
from gen.gan.task import GANTask

# What `gen train gan` and `gen train gan --coordconv` train.
MODELS = {"conv (gen train gan)": gan_preset(),
          "CoordConv (gen train gan --coordconv)": gan_preset(coordconv=True)}


def seconds_per_step(preset: Preset[GANConfig], steps: int, batch_size: int, device: torch.device) -> float:
    task = GANTask(preset.model.for_data(1, 64), device)
    images = make_squares().float_images().to(device)
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
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = timing_device(args.device, args.threads)

    print(f"{args.steps} steps, batch {args.batch_size}, {args.threads} threads, {device}")
    print("| model | s / step | default steps | projected minutes |")
    print("|---|---:|---:|---:|")
    timings = {}
    for name, preset in MODELS.items():
        seconds = seconds_per_step(preset, args.steps, args.batch_size, device)
        default_steps = preset.schedule.steps
        timings[name] = seconds
        print(f"| {name} | {seconds:.4f} | {default_steps} | {seconds * default_steps / 60:.1f} |")
    conv, coord = timings.values()
    print(f"CoordConv / conv time per step: {coord / conv:.2f}x")


if __name__ == "__main__":
    main()
