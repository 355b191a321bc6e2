"""What a model family (GAN, VAE) gives the shared training loop.

A family subclasses `Task`: it owns its networks, optimisers and the maths of one step;
the loop (gen.training) owns everything around it. The family modules import this module,
never the loop, so models and maths stay apart from the machinery that runs them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
from torch import nn

from gen.devices import restore_generator
from gen.distributed import SINGLE, World
from gen.errors import InputError

if TYPE_CHECKING:
    from gen.data.notsoclevr import NotSoClevr


class Task:
    """A model family's side of training, sampling and checkpointing.

    `train_step` returns detached scalar tensors (the loop reads them back only when it
    logs, so a step never waits on the device). `state_dict` covers networks, optimisers
    and the noise generator, so that a resumed run continues exactly as an unbroken one.
    """

    config: Any  # the family's config dataclass (GANConfig, VAEConfig)
    noise: torch.Generator
    world: World = SINGLE  # the ranks sharing each step (gen.distributed)
    precision: torch.dtype = torch.float32  # of a training step's forward passes (gen.speed)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for a step's network forward passes (the families take their
        losses in fp32): weights, gradients and optimiser state stay fp32, and bf16 keeps
        fp32's range, so no loss scaling is needed."""
        return torch.autocast(self.noise.device.type, dtype=self.precision,
                              enabled=self.precision != torch.float32)

    def compiled_networks(self) -> dict[str, nn.Module]:
        """The networks `--compile` compiles: those a step runs (not averaged copies such as
        an EMA), less any whose step needs what torch.compile cannot do."""
        return self.networks()

    def networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, real: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def latents(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n latents from the model's prior, drawn with `generator` on its device."""
        raise NotImplementedError

    def sample(self, latents: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1], N x C x H x W, for latents."""
        raise NotImplementedError

    def extra_images(self) -> dict[str, torch.Tensor]:
        """Image batches worth a look in TensorBoard besides the samples."""
        return {}

    def held_out_metrics(self, held_out: NotSoClevr, device: torch.device) -> dict:
        """Metrics on the held-out part of a split (models that reconstruct have some)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {
            "networks": {name: net.state_dict() for name, net in self.networks().items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers().items()},
            "noise": self.noise.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in self.networks().items():
            net.load_state_dict(state["networks"][name])
        for name, opt in self.optimizers().items():
            opt.load_state_dict(state["optimizers"][name])
        restore_generator(self.noise, state["noise"])


def adam(parameters: Iterable[nn.Parameter], lr: float, device: torch.device,
         betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    """Adam, fused into one kernel per step on GPUs (the same update; on the CPU the default
    implementation, which the measured CPU runs used)."""
    return torch.optim.Adam(parameters, lr, betas=betas, fused=True if device.type == "cuda" else None)


@runtime_checkable
class Encoder(Protocol):
    """A model that maps images to latents (a VAE's posterior means)."""

    def encode(self, images: torch.Tensor) -> torch.Tensor: ...


def require_encoder(task: object, purpose: str) -> Encoder:
    """The task as an Encoder, or an InputError saying that `purpose` needs one."""
    if not isinstance(task, Encoder):
        raise InputError(f"{purpose} needs a VAE checkpoint: a GAN has no encoder to map images to latents")
    return task


@torch.no_grad()
def draw_samples(task: Task, n: int, seed: int, device: torch.device, batch: int = 512) -> torch.Tensor:
    """n samples in [-1, 1] from seeded latents, in batches (CPU tensor)."""
    generator = torch.Generator(device=device).manual_seed(seed)
    chunks = [task.sample(task.latents(min(batch, n - done), generator)).cpu()
              for done in range(0, n, batch)]
    return torch.cat(chunks)
