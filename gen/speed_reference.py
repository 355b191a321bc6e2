"""Speed reference: the median step of a pytorch/examples-style DCGAN-64 training loop.

These machines' speed drifts by 20% and more from one day (or hour) to the next, so wall
times are stated against this reference measured beside them: scale a wall time by
REFERENCE_SECONDS / (this script's reading) to compare it with times measured elsewhere.

The loop is pytorch/examples' dcgan/main.py (Radford et al.): nz 100, ngf = ndf = 64, batch
64, 64 x 64 RGB, BatchNorm, Adam (lr 2e-4, betas 0.5 / 0.999), BCE; one D step on a real
and a fake batch, one G step. Real images are fixed random tensors: the reference measures
compute, not data loading.

Usage: python -m gen.speed_reference [--steps 20] [--warmup 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

# The median step (s) of the machine that wall times are scaled to (2 threads).
REFERENCE_SECONDS = 1.64
NZ, NGF, NDF, CHANNELS, BATCH = 100, 64, 64, 3, 64


def generator() -> nn.Sequential:
    """z (NZ x 1 x 1) -> 4x4 at 8 ngf, then stride-2 transposed convs to a 64 x 64 image."""
    widths = [NZ, NGF * 8, NGF * 4, NGF * 2, NGF]
    layers: list[nn.Module] = []
    for index, (cin, cout) in enumerate(zip(widths, widths[1:])):
        stride, padding = (1, 0) if index == 0 else (2, 1)
        layers += [nn.ConvTranspose2d(cin, cout, 4, stride, padding, bias=False), nn.BatchNorm2d(cout),
                   nn.ReLU(True)]
    return nn.Sequential(*layers, nn.ConvTranspose2d(NGF, CHANNELS, 4, 2, 1, bias=False), nn.Tanh())


def discriminator() -> nn.Sequential:
    """64 x 64 image -> stride-2 convs (BN from the second) -> 4x4 at 8 ndf -> probability."""
    widths = [CHANNELS, NDF, NDF * 2, NDF * 4, NDF * 8]
    layers: list[nn.Module] = []
    for index, (cin, cout) in enumerate(zip(widths, widths[1:])):
        layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), *([nn.BatchNorm2d(cout)] if index else []),
                   nn.LeakyReLU(0.2, inplace=True)]
    return nn.Sequential(*layers, nn.Conv2d(NDF * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(), nn.Flatten(0))


def step_seconds(steps: int, warmup: int, device: torch.device) -> list[float]:
    """Wall seconds of each timed training step (after `warmup` untimed ones)."""
    torch.manual_seed(0)
    net_g, net_d = generator().to(device), discriminator().to(device)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loss = nn.BCELoss()
    real = torch.rand(BATCH, CHANNELS, 64, 64, device=device) * 2 - 1
    ones, zeros = torch.ones(BATCH, device=device), torch.zeros(BATCH, device=device)
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        net_d.zero_grad()
        loss(net_d(real), ones).backward()
        fake = net_g(torch.randn(BATCH, NZ, 1, 1, device=device))
        loss(net_d(fake.detach()), zeros).backward()
        opt_d.step()
        net_g.zero_grad()
        loss(net_d(fake), ones).backward()
        opt_g.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    times = step_seconds(args.steps, args.warmup, torch.device(args.device))
    median = statistics.median(times)
    print(f"DCGAN-64 reference, {args.threads} threads, {args.device}: median step {median:.3f} s "
          f"(min {min(times):.3f}, max {max(times):.3f}, {args.steps} steps)")
    print(f"scale wall times by {REFERENCE_SECONDS} / {median:.3f} = {REFERENCE_SECONDS / median:.3f} "
          f"to compare with the {REFERENCE_SECONDS} s reference machine")


if __name__ == "__main__":
    main()
