"""Fast paths of a training run, each a RunConfig setting that `auto` turns on where it
helps (GPUs): bf16 autocast with fp32 master weights, channels_last memory layout, and
torch.compile of the trained networks. None changes a checkpoint's format."""

from __future__ import annotations

import torch

from gen.configs import RunConfig
from gen.task import Task

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def precision_of(run: RunConfig, device: torch.device) -> torch.dtype:
    """bf16 on GPUs that compute it natively (Ampere and later: tensor cores, fp32's exponent
    range), else fp32, unless set."""
    if run.precision == "auto":
        native = device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
        return torch.bfloat16 if native else torch.float32
    return DTYPES[run.precision]


def channels_last_on(run: RunConfig, device: torch.device) -> bool:
    """NHWC layout on GPUs, where cuDNN's convolutions prefer it, unless set."""
    return device.type == "cuda" if run.channels_last is None else run.channels_last


def apply_fast_paths(task: Task, run: RunConfig, device: torch.device) -> None:
    """Set the task's precision, its networks' memory layout and compilation for the run,
    and fit the optimisers' state to them (a resumed state keeps its saved layout)."""
    task.precision = precision_of(run, device)
    if channels_last_on(run, device):
        for network in task.networks().values():
            network.to(memory_format=torch.channels_last)
    match_optimizer_state(task, device)
    if run.compile:
        for network in task.compiled_networks().values():
            network.compile()


def match_optimizer_state(task: Task, device: torch.device) -> None:
    """Give each optimiser state tensor its weight's memory layout, and fuse Adam on GPUs
    only: a fused kernel walks memory flat, so a state saved in another layout (a run
    resumed with another --channels-last or device) would pair the wrong elements."""
    fused = device.type == "cuda"
    for optimizer in task.optimizers().values():
        for group in optimizer.param_groups:
            if "fused" in group:
                group["fused"] = True if fused else None
        for weight, state in optimizer.state.items():
            for name, value in state.items():
                if not torch.is_tensor(value):
                    continue
                if name == "step" and fused:  # where a fused kernel reads it (as load_state_dict puts it)
                    state[name] = value.to(weight.device, torch.float32)
                elif value.shape == weight.shape and value.stride() != weight.stride():
                    state[name] = torch.empty_like(weight).copy_(value)
