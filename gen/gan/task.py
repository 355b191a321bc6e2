"""The GAN as a training `Task`: one D step, then G step(s), optional lazy R1 and G EMA."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from gen.gan.losses import discriminator_loss, generator_loss, r1_penalty
from gen.gan.models import Discriminator, DiscriminatorConfig, GeneratorConfig, build_generator
from gen.training import TaskState

LATENT_DISTRIBUTIONS = ("normal", "uniform")


@dataclass
class GANConfig:
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: str = "nonsaturating"
    latent: str = "normal"
    g_lr: float = 5e-4
    d_lr: float = 5e-4
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float = 1.0
    r1_every: int = 4
    g_steps: int = 1
    ema_beta: float = 0.999

    def for_data(self, channels: int, resolution: int) -> GANConfig:
        """The same GAN sized for images of this channel count and resolution."""
        shape = {"channels": channels, "resolution": resolution}
        return replace(self, generator=replace(self.generator, **shape),
                       discriminator=replace(self.discriminator, **shape))


# Per generator architecture: the settings that trained it best on squares on 2 CPU cores,
# and the steps that fit the 15-minute budget there (README). The tiled generator needs the
# authors' slower D (lr 1e-4, two G steps per D step; with the DCGAN's D lr 5e-4 the D wins
# and samples stay blank), a D of width 16 (31% valid samples at 2000 steps against 7% at
# width 8), a ramp-down (valid 0.899 against 0.878 without, with a ReLU mapping) and a tanh
# ending its mapping MLP (coverage_ratio 0.937 in 5000 steps against 0.885 in 6000 with a
# ReLU: the canvas edges get their share). The DCGAN got 0.1% valid samples at 4000 steps
# with the tiled settings against 3.5% with its own.
ARCH_DEFAULTS = {
    "dcgan": {"d_lr": 5e-4, "g_steps": 1, "output_bias": -3.0, "d_width": 8,
              "steps": 20_000, "lr_rampdown": 0.0},
    "tiled": {"d_lr": 1e-4, "g_steps": 2, "output_bias": 0.0, "d_width": 16,
              "steps": 5_000, "lr_rampdown": 0.3, "mapping_layers": 2, "first_gain": 2.0,
              "mapping_tanh": True},
}


def resolve_placement(coordconv: bool, coord_in: str = "both", coord_layers: str = "all",
                      arch: str | None = None) -> tuple[str, str, str]:
    """(arch, G coord_layers, D coord_layers) for the CLI's CoordConv switches: with CoordConv
    in G the default G is the tiled one, which sees coordinates at every pixel, so `first`
    placement in G needs the DCGAN G."""
    g_coords = coord_layers if coordconv and coord_in in ("both", "g") else "none"
    d_coords = coord_layers if coordconv and coord_in in ("both", "d") else "none"
    arch = arch or ("tiled" if g_coords != "none" else "dcgan")
    if arch == "tiled" and g_coords == "first":
        raise ValueError("--coord-layers first needs a DCGAN G (--arch dcgan) or --coord-in d: the tiled G "
                         "sees coordinates at every pixel")
    return arch, g_coords, d_coords


def default_config(arch: str = "dcgan", g_coords: str = "none", d_coords: str = "none") -> GANConfig:
    """The default GAN for a generator architecture and CoordConv placement."""
    if arch not in ARCH_DEFAULTS:
        raise ValueError(f"unknown generator arch {arch!r}; choose from {', '.join(ARCH_DEFAULTS)}")
    preset = ARCH_DEFAULTS[arch]
    generator_keys = ("output_bias", "mapping_layers", "first_gain", "mapping_tanh")
    shape = {key: preset[key] for key in generator_keys if key in preset}
    return GANConfig(
        generator=GeneratorConfig(arch=arch, coord_layers=g_coords, **shape),
        discriminator=DiscriminatorConfig(width=preset["d_width"], coord_layers=d_coords),
        d_lr=preset["d_lr"], g_steps=preset["g_steps"])


def sample_latents(distribution: str, n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    device = generator.device
    if distribution == "normal":
        return torch.randn(n, dim, generator=generator, device=device)
    if distribution == "uniform":
        return torch.rand(n, dim, generator=generator, device=device) * 2 - 1
    raise ValueError(f"unknown latent distribution {distribution!r}; choose normal or uniform")


class GANTask(TaskState):
    def __init__(self, config: GANConfig, device: torch.device, seed: int = 0) -> None:
        self.config = config
        self.generator = build_generator(config.generator).to(device)
        self.discriminator = Discriminator(config.discriminator).to(device)
        self.generator_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        self.g_optimizer = torch.optim.Adam(self.generator.parameters(), config.g_lr, betas=config.betas)
        self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), config.d_lr,
                                            betas=config.betas)
        self.noise = torch.Generator(device=device).manual_seed(seed + 12345)

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator,
                "generator_ema": self.generator_ema}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.g_optimizer, "discriminator": self.d_optimizer}

    def latents(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return sample_latents(self.config.latent, n, self.config.generator.latent_dim, generator)

    def train_step(self, real: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        config = self.config
        batch = len(real)
        with torch.no_grad():
            fake = self.generator(self.latents(batch, self.noise))
        use_r1 = config.r1_gamma > 0 and step % config.r1_every == 0
        real = real.detach().requires_grad_(use_r1)
        real_logits = self.discriminator(real)
        fake_logits = self.discriminator(fake)
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
        self.d_optimizer.step()

        self.discriminator.requires_grad_(False)
        for _ in range(config.g_steps):
            g_loss = generator_loss(config.loss, self.discriminator(
                self.generator(self.latents(batch, self.noise))))
            self.g_optimizer.zero_grad(set_to_none=True)
            g_loss.backward()
            self.g_optimizer.step()
        self.discriminator.requires_grad_(True)
        scalars["loss/generator"] = g_loss.detach()
        self.update_ema(step)
        return scalars

    @torch.no_grad()
    def update_ema(self, step: int) -> None:
        """Average G's weights; the horizon ramps up with training (as in StyleGAN2-ADA) so
        early samples are not an average dominated by the random initialisation."""
        beta = min(self.config.ema_beta, (1 + step) / (10 + step))
        for ema, live in zip(self.generator_ema.parameters(), self.generator.parameters()):
            ema.lerp_(live, 1 - beta)
        for ema, live in zip(self.generator_ema.buffers(), self.generator.buffers()):
            ema.copy_(live)

    @torch.no_grad()
    def sample(self, latents: torch.Tensor) -> torch.Tensor:
        return self.generator_ema(latents)

    def extra_images(self) -> dict[str, torch.Tensor]:
        return {}
