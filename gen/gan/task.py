"""The GAN as a training `Task`: one D step, then G step(s), optional lazy R1 and G EMA."""

from __future__ import annotations

import copy

import torch
from torch import nn

from gen.gan.config import GANConfig
from gen.gan.losses import discriminator_loss, generator_loss, r1_penalty
from gen.gan.models import Discriminator, build_generator
from gen.task import Task, adam


def sample_latents(distribution: str, n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    device = generator.device
    if distribution == "normal":
        return torch.randn(n, dim, generator=generator, device=device)
    if distribution == "uniform":
        return torch.rand(n, dim, generator=generator, device=device) * 2 - 1
    raise ValueError(f"unknown latent distribution {distribution!r}; choose normal or uniform")


class GANTask(Task):
    def __init__(self, config: GANConfig, device: torch.device, seed: int = 0) -> None:
        self.config = config
        self.generator = build_generator(config.generator).to(device)
        self.discriminator = Discriminator(config.discriminator).to(device)
        self.generator_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        self.g_optimizer = adam(self.generator.parameters(), config.g_lr, device, config.betas)
        self.d_optimizer = adam(self.discriminator.parameters(), config.d_lr, device, config.betas)
        self.noise = torch.Generator(device=device).manual_seed(seed + 12345)

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator,
                "generator_ema": self.generator_ema}

    def compiled_networks(self) -> dict[str, nn.Module]:
        """G, and D unless the R1 penalty needs its double backward (torch.compile has none)."""
        if self.config.r1_gamma > 0:
            return {"generator": self.generator}
        return {"generator": self.generator, "discriminator": self.discriminator}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.g_optimizer, "discriminator": self.d_optimizer}

    def latents(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return sample_latents(self.config.latent, n, self.config.generator.latent_dim, generator)

    def train_step(self, real: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        config = self.config
        world = self.world
        batch = len(real) * world.size  # every rank draws the global batch's latents, keeps its slice
        with torch.no_grad(), self.autocast():
            fake = self.generate(batch)
        use_r1 = config.r1_gamma > 0 and step % config.r1_every == 0
        real = real.detach().requires_grad_(use_r1)
        with self.autocast():
            real_logits = self.discriminator(real)
            fake_logits = self.discriminator(fake)
        real_logits, fake_logits = real_logits.float(), fake_logits.float()  # losses in fp32
        d_loss = discriminator_loss(config.loss, real_logits, fake_logits)
        scalars = {
            "loss/discriminator": d_loss.detach(),
            "discriminator/real_accuracy": (real_logits.detach() > 0).float().mean(),
            "discriminator/fake_accuracy": (fake_logits.detach() < 0).float().mean(),
        }
        if use_r1:
            penalty = r1_penalty(real_logits, real)
            d_loss = d_loss + config.r1_gamma / 2 * config.r1_every * penalty
            scalars["loss/r1"] = penalty.detach()
        self.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        world.average_gradients(self.discriminator)
        self.d_optimizer.step()

        self.discriminator.requires_grad_(False)
        for _ in range(config.g_steps):
            with self.autocast():
                logits = self.discriminator(self.generate(batch))
            g_loss = generator_loss(config.loss, logits.float())
            self.g_optimizer.zero_grad(set_to_none=True)
            g_loss.backward()
            world.average_gradients(self.generator)
            self.g_optimizer.step()
        self.discriminator.requires_grad_(True)
        scalars["loss/generator"] = g_loss.detach()
        self.update_ema(step)
        return scalars

    def generate(self, batch: int) -> torch.Tensor:
        """This rank's slice of a global batch of training fakes from the live G, each drawn
        up to `subpixel_jitter` pixels off the grid: D then judges objects' sizes at every
        sub-pixel position, not only where G snaps them to the grid."""
        latents = self.world.mine(self.latents(batch, self.noise))
        jitter = self.config.generator.subpixel_jitter
        if jitter == 0:
            return self.generator(latents)
        shift = (torch.rand(batch, 2, generator=self.noise, device=self.noise.device) * 2 - 1) * jitter
        return self.generator(latents, self.world.mine(shift))

    @torch.no_grad()
    def update_ema(self, step: int) -> None:
        """Average G's weights over a horizon of `ema_rampup * (step + 10)` steps, capped at
        1 / (1 - ema_beta): it grows with training (like StyleGAN2-ADA's ema_rampup, which
        counts images, not steps) so early samples are not an average dominated by the random
        initialisation."""
        horizon = self.config.ema_rampup * (step + 10)
        beta = min(self.config.ema_beta, max(0.0, 1 - 1 / horizon))
        for ema, live in zip(self.generator_ema.parameters(), self.generator.parameters()):
            ema.lerp_(live, 1 - beta)
        for ema, live in zip(self.generator_ema.buffers(), self.generator.buffers()):
            ema.copy_(live)

    @torch.no_grad()
    def sample(self, latents: torch.Tensor) -> torch.Tensor:
        return self.generator_ema(latents)

