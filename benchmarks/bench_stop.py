"""What fault tolerance costs: the finite guard's share of step time, and how a SIGTERM stops.

1. Guard overhead: the shared loop (`gen.training.train`) on the conv GAN preset, with its
   finite checks (losses at log intervals, weights before each save) and with them replaced
   by no-ops, alternating repetitions in one process; prints the median seconds per step of
   each and their ratio.
2. Stop: `gen train gan --coordconv` in a subprocess, SIGTERM after `--stop-after` seconds of
   training; prints the seconds from the signal to the exit, the exit code, the step the
   CLI says it stopped after and the step of the saved checkpoint (steps lost = the
   difference).

Usage: python benchmarks/bench_stop.py [--steps 200] [--repeats 3] [--stop-after 20]
       [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from gen import runs, training
from gen.checkpoint import load_checkpoint
from gen.gan.config import gan_preset


def seconds_per_step(steps: int, guarded: bool, out: Path) -> float:
    """One repetition of `steps` steps of the conv GAN preset through the shared loop."""
    preset = gan_preset()
    run = preset.run_config(steps=steps, log_every=max(1, steps // 4), ckpt_every=max(1, steps // 2),
                            eval_every=10**9, image_every=10**9, device="cpu", workers=0)
    prepared = runs.prepare_start(run, preset.model, out)
    checks = training.check_finite_scalars, training.check_finite_weights
    if not guarded:
        training.check_finite_scalars = training.check_finite_weights = lambda *args: None
    try:
        start = time.perf_counter()
        prepared.train()
        return (time.perf_counter() - start) / steps
    finally:
        training.check_finite_scalars, training.check_finite_weights = checks


def guard_overhead(steps: int, repeats: int) -> None:
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(repeats):
            for guarded in (False, True):
                out = Path(scratch) / f"{guarded}-{repeat}"
                times[guarded].append(seconds_per_step(steps, guarded, out))
    plain, guarded = statistics.median(times[False]), statistics.median(times[True])
    print(f"guard: {steps} steps x {repeats} alternating repeats, conv GAN preset, "
          f"{torch.get_num_threads()} threads")
    print(f"  without checks {plain:.4f} s/step, with {guarded:.4f} s/step: ratio {guarded / plain:.3f}")


def stop_on_sigterm(stop_after: float, threads: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = Path(scratch) / "run"
        command = [sys.executable, "-m", "gen", "train", "gan", "--coordconv", "--device", "cpu",
                   "--out", str(run_dir)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=env)
        while not (run_dir / "config.json").exists() and process.poll() is None:
            time.sleep(0.05)
        time.sleep(stop_after)
        signalled = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate()
        took = time.perf_counter() - signalled
        said = re.search(r"after step (\d+)", out)
        saved = load_checkpoint(run_dir).step if (run_dir / "checkpoint.pt").exists() else None
    if said is None:
        print(f"stop: no stop line (exit {process.returncode}): {err.strip().splitlines()[-1:]}")
        return
    print(f"stop: SIGTERM after {stop_after:.0f} s of `gen train gan --coordconv`: exit {process.returncode} "
          f"in {took:.2f} s; stopped after step {said[1]}, checkpoint holds step {saved}: "
          f"{int(said[1]) - saved} steps lost")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stop-after", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    guard_overhead(args.steps, args.repeats)
    stop_on_sigterm(args.stop_after, args.threads)


if __name__ == "__main__":
    main()
