"""Training across processes with torch.distributed (`torchrun -m gen train ...`).

A run's maths does not depend on how many processes share it: every rank draws the whole
global batch's latents, noise and data indices from the same seeded streams and keeps its
slice, and gradients are averaged over ranks after each backward (by hand rather than with
DistributedDataParallel, which cannot average the R1 penalty's double backward). So ranks
hold identical weights, and a checkpoint has the single-process format. Only batch
statistics (BatchNorm, minibatch standard deviation) see the local slice, unless BatchNorm
is synchronised (`--sync-bn`, `synchronise_batch_norm`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as differentiable
from torch import nn

from gen.errors import InputError


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of a run (one rank when not distributed)."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes logs, metrics, samples and checkpoints."""
        return self.rank == 0

    def local_batch(self, global_batch: int) -> int:
        if global_batch % self.size:
            raise InputError(f"--batch-size {global_batch} does not split over {self.size} processes")
        return global_batch // self.size

    def mine(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a global batch (along the first dimension)."""
        if self.size == 1:
            return batch
        local = len(batch) // self.size
        return batch[self.rank * local:(self.rank + 1) * local]

    def average_gradients(self, module: nn.Module) -> None:
        """Average every gradient of `module` over the ranks, in one flat all-reduce."""
        if self.size == 1:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([grad.reshape(-1) for grad in grads])
        dist.all_reduce(flat)
        flat /= self.size
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def total(self, values: dict[str, float]) -> dict[str, float]:
        """Host-side scalars summed over the ranks (counters)."""
        if self.size == 1 or not values:
            return values
        keys = sorted(values)
        tensor = torch.tensor([values[key] for key in keys], dtype=torch.float64)
        dist.all_reduce(tensor, group=_host_group())
        return dict(zip(keys, tensor.tolist()))

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Scalars averaged over the ranks (logged losses, so a non-finite one stops every rank)."""
        if self.size == 1:
            return values
        return {key: value / self.size for key, value in self.total(values).items()}

    def any(self, flag: bool) -> bool:
        """Whether any rank raised `flag`: stops (signals, failed saves) are agreed, so no
        rank waits forever in a collective the others left. A host-side all-reduce."""
        if self.size == 1:
            return flag
        tensor = torch.tensor([int(flag)])
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=_host_group())
        return bool(tensor.item())

    def check_identical(self, module: nn.Module, name: str) -> None:
        """RuntimeError if the ranks' copies of `module` have drifted apart (a bug)."""
        if self.size == 1:
            return
        checksum = torch.stack([p.detach().double().sum() for p in module.parameters()]).cpu()
        extremes = torch.stack([checksum, -checksum])
        dist.all_reduce(extremes, op=dist.ReduceOp.MAX, group=_host_group())
        if not torch.equal(extremes[0], -extremes[1]):
            raise RuntimeError(f"the ranks' copies of the {name} differ")


SINGLE = World()


class SyncedBatchNorm(nn.BatchNorm2d):
    """BatchNorm over the global batch: per-channel sums, then sums of squared deviations,
    are summed over the ranks by differentiable all-reduces, so gradients flow to every
    rank's inputs and a run computes the same function at any world size. torch's SyncBatchNorm runs on GPUs
    only; this one runs on gloo too. Same parameters and buffers as nn.BatchNorm2d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not dist.is_initialized():
            return super().forward(x)
        channels = x.shape[1]
        exact = x.float()  # statistics in fp32 also under bf16 autocast (as BatchNorm keeps them)
        count = exact.new_full((1,), x.numel() // channels)
        sums = differentiable.all_reduce(torch.cat([exact.sum((0, 2, 3)), count]))
        total = sums[-1]
        mean = sums[:channels] / total
        shape = (1, channels, 1, 1)
        centred = exact - mean.view(shape)  # two passes: E[x^2] - E[x]^2 would cancel at large means
        var = differentiable.all_reduce((centred * centred).sum((0, 2, 3))) / total
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                factor = 1 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean, factor)
                self.running_var.lerp_(var * total / (total - 1), factor)
        y = centred * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def synchronise_batch_norm(module: nn.Module) -> nn.Module:
    """Make every BatchNorm2d of `module` a SyncedBatchNorm, in place: the same modules,
    parameters and buffers (so the same state_dict), with global-batch statistics."""
    for layer in module.modules():
        if type(layer) is nn.BatchNorm2d:
            layer.__class__ = SyncedBatchNorm
    return module
_HOST_GROUP = None


def _host_group():
    """A gloo group for small host-side collectives, so that they need no device sync."""
    global _HOST_GROUP
    if _HOST_GROUP is None:
        _HOST_GROUP = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else dist.group.WORLD
    return _HOST_GROUP


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_world(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group torchrun set up (NCCL on GPUs, gloo on CPU) and pick this
    rank's device; a single process gets SINGLE and `device` unchanged."""
    if not launched_by_torchrun():
        return SINGLE, device
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return World(dist.get_rank(), dist.get_world_size()), device


def leave_world() -> None:
    """Leave the process group init_world joined (NCCL frees its communicators only so)."""
    global _HOST_GROUP
    if dist.is_initialized():
        dist.destroy_process_group()
    _HOST_GROUP = None
