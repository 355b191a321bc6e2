"""CoordConv vs plain convolution: forward + backward time of the same layer, side by side.

The paper claims CoordConv costs no computational efficiency; this measures the ratio on
this machine for DCGAN-sized layers, for gen's layer (the coordinate term added as a
position-dependent bias) and for the textbook form that concatenates coordinate channels
to the input. Usage: python benchmarks/bench_coordconv.py [--device cuda]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn

from gen.coordconv import make_conv

LAYERS = [  # (batch, in, out, size, kernel, stride, transpose)
    (64, 64, 128, 32, 4, 2, False),
    (64, 128, 64, 16, 4, 2, True),
    (64, 3, 64, 64, 4, 2, False),
    (64, 256, 256, 16, 3, 1, False),
]


def concatenating(layer: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The textbook CoordConv: the base torch layer over [x, coordinates]."""
    base = type(layer).__mro__[1]
    return lambda x: base.forward(layer, layer.add_coords(x))


def time_layer(layer: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, repeats: int) -> float:
    """Median seconds of one forward + backward."""
    times = []
    for index in range(repeats + 2):
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        layer(x).sum().backward()
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        if index >= 2:  # the first calls pay for allocation and kernel selection
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("| layer | conv ms | CoordConv ms | ratio | concatenating ms | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for batch, cin, cout, size, kernel, stride, transpose in LAYERS:
        x = torch.randn(batch, cin, size, size, device=device, requires_grad=True)
        layers = {}
        for coord in (False, True):
            torch.manual_seed(0)
            layers[coord] = make_conv(cin, cout, kernel, coord=coord, transpose=transpose, stride=stride,
                                      padding=1).to(device)
        variants = (layers[False], layers[True], concatenating(layers[True]))
        plain, coord, concat = (time_layer(variant, x, args.repeats) for variant in variants)
        name = f"{'deconv' if transpose else 'conv'} {cin}->{cout} k{kernel}s{stride} @{size} x{batch}"
        print(f"| {name} | {plain * 1e3:.2f} | {coord * 1e3:.2f} | {coord / plain:.2f} | "
              f"{concat * 1e3:.2f} | {concat / plain:.2f} |")


if __name__ == "__main__":
    main()
