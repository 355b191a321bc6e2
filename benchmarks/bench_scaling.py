"""Images/s of GAN training at 1 and N processes (torchrun, gloo on CPU, NCCL on GPUs).

Launches this script under torchrun for each world size in `--processes` (the same global
batch split over the ranks, the same total of threads: `--threads` divided among them on
the CPU) and times `GANTask.train_step` on squares held on the device, as `gen train gan`
runs it; rank 0 prints the median images/s.

Usage: python benchmarks/bench_scaling.py [--processes 1,2] [--batch-size 64] [--width 32]
       [--steps 10] [--repeats 3] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch


def worker(args: argparse.Namespace) -> None:
    """One rank: join the world, train, and (rank 0) print images/s."""
    from gen.data import make_squares
    from gen.data.batches import TensorBatches
    from gen.devices import keep_freed_host_memory
    from gen.distributed import init_world, leave_world
    from gen.gan.config import gan_preset
    from gen.gan.task import GANTask

    world, device = init_world(torch.device(args.device))
    if device.type == "cpu":
        torch.set_num_threads(max(1, args.threads // world.size))
        keep_freed_host_memory()
    preset = gan_preset(arch="dcgan", generator={"width": args.width}, discriminator={"width": args.width})
    task = GANTask(preset.model.for_data(1, 64), device)
    task.world = world
    batches = TensorBatches(make_squares(device=device).images, args.batch_size, 0, world)
    for step in range(3):
        task.train_step(next(batches), step)
    times = []
    for repeat in range(args.repeats):
        world.any(False)  # ranks start each timing together
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for step in range(args.steps):
            task.train_step(next(batches), 3 + repeat * args.steps + step)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    if world.is_main:
        print(args.batch_size * args.steps / statistics.median(times))
    leave_world()  # a rank that exits with gloo's threads running can abort ("terminate called...")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    print(f"GAN (DCGAN, width {args.width}), global batch {args.batch_size}, {args.threads} threads in all, "
          f"{args.device}")
    print("| processes | images / s | x 1 process |\n|---:|---:|---:|")
    options = [f"--{name.replace('_', '-')}={value}" for name, value in vars(args).items()
               if name not in ("processes", "worker")]
    rates = {}
    for processes in [int(count) for count in args.processes.split(",")]:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                   str(processes), __file__, "--worker", *options]
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, args.threads // processes))}
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env, check=True)
        rate = rates[processes] = float(done.stdout.split()[-1])
        print(f"| {processes} | {rate:.1f} | {rate / next(iter(rates.values())):.2f} |")


if __name__ == "__main__":
    main()
