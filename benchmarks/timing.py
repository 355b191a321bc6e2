"""Side-by-side timing for the benchmarks: candidates measured alternately, medians."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def timing_device(name: str, threads: int) -> torch.device:
    """The device to time on, with the CPU set up as `gen train` runs it: `threads` threads
    and freed host memory kept for reuse."""
    torch.set_num_threads(threads)
    device = torch.device(name)
    if device.type == "cpu":
        from gen.devices import keep_freed_host_memory

        keep_freed_host_memory()
    return device


def alternating_medians(steps: dict[str, Callable[[], object]], count: int, repeats: int,
                        device: torch.device | None = None, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each candidate: after `warmup` calls each, `repeats`
    rounds in which every candidate runs `count` calls in turn, so drift of the machine's
    speed falls on all of them alike."""

    def sync() -> None:
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize()

    for step in steps.values():
        for _ in range(warmup):
            step()
    timings: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            sync()
            started = time.perf_counter()
            for _ in range(count):
                step()
            sync()
            timings[name].append((time.perf_counter() - started) / count)
    return {name: statistics.median(values) for name, values in timings.items()}
