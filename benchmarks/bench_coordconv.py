"""CoordConv vs plain convolution: forward + backward time of the same layer, side by side.

The paper claims CoordConv costs no computational efficiency; this measures the ratio on
this machine for DCGAN-sized layers, for both forms gen's layer has: the coordinate term
added as a position-dependent bias (its form on the CPU) and the textbook form that
concatenates coordinate channels to the input (its form on other devices).
Usage: python benchmarks/bench_coordconv.py [--device cuda] [--repeats 10] [--batch 64]
       [--bf16] [--channels-last]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from gen.coordconv import make_conv

LAYERS = [  # (in, out, size, kernel, stride, transpose)
    (64, 128, 32, 4, 2, False),
    (128, 64, 16, 4, 2, True),
    (3, 64, 64, 4, 2, False),
    (256, 256, 16, 3, 1, False),
]


def time_layer(layer: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, repeats: int,
               bf16: bool = False) -> float:
    """Median seconds of one forward (under bf16 autocast if asked) + backward."""
    times = []
    for index in range(repeats + 2):
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            out = layer(x)
        out.float().sum().backward()
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        if index >= 2:  # the first calls pay for allocation and kernel selection
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--bf16", action="store_true", help="Forward under bf16 autocast (--bf16 training).")
    parser.add_argument("--channels-last", action="store_true",
                        help="Layers and inputs in channels_last (--channels-last training).")
    args = parser.parse_args()
    device = torch.device(args.device)
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"bf16 {args.bf16}, channels_last {args.channels_last}")
    print("| layer | conv ms | position bias ms | ratio | concatenating ms | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    batch = args.batch
    for cin, cout, size, kernel, stride, transpose in LAYERS:
        x = torch.randn(batch, cin, size, size, device=device).to(memory_format=layout).requires_grad_()
        layers = {}
        for coord in (False, True):
            torch.manual_seed(0)
            layers[coord] = make_conv(cin, cout, kernel, coord=coord, transpose=transpose, stride=stride,
                                      padding=1).to(device, memory_format=layout)
        variants = (layers[False], layers[True].position_bias_forward, layers[True].concatenating_forward)
        plain, coord, concat = (time_layer(variant, x, args.repeats, args.bf16) for variant in variants)
        name = f"{'deconv' if transpose else 'conv'} {cin}->{cout} k{kernel}s{stride} @{size} x{batch}"
        print(f"| {name} | {plain * 1e3:.2f} | {coord * 1e3:.2f} | {coord / plain:.2f} | "
              f"{concat * 1e3:.2f} | {concat / plain:.2f} |")


if __name__ == "__main__":
    main()
