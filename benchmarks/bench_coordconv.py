"""CoordConv vs plain convolution: forward + backward time of the same layer, side by side.

The paper claims CoordConv costs no computational efficiency; this measures the ratio on
this machine for DCGAN-sized layers. Usage: python benchmarks/bench_coordconv.py [--device cuda]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from gen.coordconv import make_conv

LAYERS = [  # (batch, in, out, size, kernel, stride, transpose)
    (64, 64, 128, 32, 4, 2, False),
    (64, 128, 64, 16, 4, 2, True),
    (64, 3, 64, 64, 4, 2, False),
    (64, 256, 256, 16, 3, 1, False),
]


def time_layer(layer: nn.Module, x: torch.Tensor, repeats: int) -> float:
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
    print(f"{'layer':<40} {'conv ms':>9} {'coordconv ms':>13} {'ratio':>7}")
    for batch, cin, cout, size, kernel, stride, transpose in LAYERS:
        x = torch.randn(batch, cin, size, size, device=device, requires_grad=True)
        results = []
        for coord in (False, True):
            torch.manual_seed(0)
            layer = make_conv(cin, cout, kernel, coord=coord, transpose=transpose, stride=stride,
                              padding=1).to(device)
            results.append(time_layer(layer, x, args.repeats))
        name = f"{'deconv' if transpose else 'conv'} {cin}->{cout} k{kernel}s{stride} @{size} x{batch}"
        print(f"{name:<40} {results[0] * 1e3:9.2f} {results[1] * 1e3:13.2f} {results[1] / results[0]:7.2f}")


if __name__ == "__main__":
    main()
