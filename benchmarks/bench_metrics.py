"""Speed of the geometric metrics against their targets.

Decoding must reach 20,000 64 x 64 images per second and a full 50,000-sample evaluation
must take under 5 seconds on the 2-core CPU. Runs every case side by side in one process
and prints rates, targets and the ratio to target (> 1 meets it).

    OMP_NUM_THREADS=1 python benchmarks/bench_metrics.py [--n 50000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from gen.data.notsoclevr import make_shapes, render_squares, square_centres
from gen.geometry import decode_samples
from gen.images import to_model_range
from gen.metrics import evaluate_samples

DECODE_TARGET = 20_000  # images per second
EVALUATE_TARGET = 5.0  # seconds for 50,000 samples


def best_time(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def batches(n: int) -> dict[str, np.ndarray | torch.Tensor]:
    """i.i.d. real squares (uint8 as files hold them, float as generators emit them) and shapes."""
    generator = torch.Generator().manual_seed(0)
    centres = square_centres()[torch.randint(0, 3136, (n,), generator=generator)]
    squares = render_squares(centres)
    return {
        "squares uint8 NHWC": squares.permute(0, 2, 3, 1).numpy(),
        "squares float [-1,1] NCHW": to_model_range(squares),
        "shapes uint8 NHWC (RGB)": make_shapes(n, seed=0).to_arrays()["images"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"torch threads {torch.get_num_threads()}, n = {args.n}, best of {args.repeat}")
    print(f"{'case':<28} {'decode img/s':>13} {'target':>7} {'ratio':>6}   "
          f"{'evaluate s':>10} {'target':>7} {'ratio':>6}  valid")
    for name, images in batches(args.n).items():
        dataset = name.split()[0]
        evaluate_samples(images[:256], dataset)  # warm caches (references, LP constraint matrices)
        decode_s = best_time(lambda: decode_samples(images, dataset), args.repeat)  # noqa: B023
        evaluate_s = best_time(lambda: evaluate_samples(images, dataset), args.repeat)  # noqa: B023
        target_s = EVALUATE_TARGET * args.n / 50_000
        rate = args.n / decode_s
        valid = evaluate_samples(images[:1000], dataset)["valid_fraction"]
        print(f"{name:<28} {rate:>13,.0f} {DECODE_TARGET:>7,} {rate / DECODE_TARGET:>6.2f}   "
              f"{evaluate_s:>10.2f} {target_s:>7.1f} {target_s / evaluate_s:>6.2f}  {valid:.3f}")


if __name__ == "__main__":
    main()
