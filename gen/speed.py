"""Fast paths of a training run, each a RunConfig setting that `auto` turns on where it
helps (GPUs): bf16 autocast with fp32 master weights, channels_last memory layout, and
torch.compile of the trained networks. None changes a checkpoint's format."""

from __future__ import annotations

import torch

from gen.configs import RunConfig
from gen.task import Task

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def precision_of(run: RunConfig, device: torch.device) -> torch.dtype:
    """bf16 on GPUs (tensor cores; same exponent range as fp32), fp32 on the CPU, unless set."""
    if run.precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return DTYPES[run.precision]


def channels_last_on(run: RunConfig, device: torch.device) -> bool:
    """NHWC layout on GPUs, where cuDNN's convolutions prefer it, unless set."""
    return device.type == "cuda" if run.channels_last is None else run.channels_last


def apply_fast_paths(task: Task, run: RunConfig, device: torch.device) -> None:
    """Set the task's precision, its networks' memory layout and compilation for the run."""
    task.precision = precision_of(run, device)
    if channels_last_on(run, device):
        for network in task.networks().values():
            network.to(memory_format=torch.channels_last)
    if run.compile:
        for network in task.compiled_networks().values():
            network.compile()
