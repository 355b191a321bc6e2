"""The VAE as a training `Task`: ELBO with a beta weight and linear KL warm-up."""

from __future__ import annotations

import torch
from torch import nn

from gen.data.notsoclevr import NotSoClevr
from gen.task import Task, adam
from gen.vae.config import VAEConfig
from gen.vae.evaluation import reconstruction_metrics
from gen.vae.likelihoods import Likelihood
from gen.vae.models import VAE

PREVIEW_COUNT = 32


def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) per sample, in nats."""
    return 0.5 * (mean.square() + log_var.exp() - 1 - log_var).sum(1)


class VAETask(Task):
    def __init__(self, config: VAEConfig, device: torch.device, seed: int = 0) -> None:
        self.config = config
        self.vae = VAE(config.model).to(device)
        self.likelihood = Likelihood(config.likelihood).to(device)
        self.optimizer = adam([*self.vae.parameters(), *self.likelihood.parameters()], config.lr, device)
        self.noise = torch.Generator(device=device).manual_seed(seed + 12345)
        self.preview: torch.Tensor | None = None

    def networks(self) -> dict[str, nn.Module]:
        return {"vae": self.vae, "likelihood": self.likelihood}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"vae": self.optimizer}

    def compiled_networks(self) -> dict[str, nn.Module]:
        """The encoder and decoder: the step calls them, not the VAE module itself."""
        return {"encoder": self.vae.encoder, "decoder": self.vae.decoder}

    def latents(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.config.model.latent_dim, generator=generator, device=generator.device)

    def kl_weight(self, step: int) -> float:
        warmup = self.config.kl_warmup
        return self.config.beta * (min(1.0, step / warmup) if warmup > 0 else 1.0)

    def train_step(self, real: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        if self.preview is None:
            self.preview = real[:PREVIEW_COUNT].detach().clone()
        with self.autocast():
            mean, log_var = self.vae.encode(real)
            noise_shape = (len(mean) * self.world.size, mean.shape[1])  # the global batch's, sliced
            eps = self.world.mine(torch.randn(noise_shape, generator=self.noise, device=mean.device))
            z = mean.float() + (0.5 * log_var.float()).exp() * eps
            decoded = self.vae.decode(z)
        reconstruction = self.likelihood.nll(decoded.float(), real).mean()  # likelihoods in fp32
        kl = kl_to_standard_normal(mean.float(), log_var.float()).mean()
        weight = self.kl_weight(step)
        loss = reconstruction + weight * kl
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for net in self.networks().values():
            self.world.average_gradients(net)
        self.optimizer.step()
        return {
            "loss/reconstruction": reconstruction.detach(),
            "loss/kl": kl.detach(),
            "loss/negative_elbo": (reconstruction + kl).detach(),
            "vae/kl_weight": torch.tensor(weight),
        }

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Posterior means of images in [-1, 1]: the latents interpolation walks between."""
        with evaluating(self.vae):
            return self.vae.encode(images)[0]

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Expected images in [-1, 1] for latents."""
        with evaluating(self.vae):
            return self.likelihood.mean_image(self.vae.decode(latents))

    def sample(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decode(latents)

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(images))

    def held_out_metrics(self, held_out: NotSoClevr, device: torch.device) -> dict:
        """How well reconstructions of the held-out squares place their square."""
        return reconstruction_metrics(self, held_out, device)

    def extra_images(self) -> dict[str, torch.Tensor]:
        if self.preview is None:
            return {}
        return {"real": self.preview, "reconstructions": self.reconstruct(self.preview)}


class evaluating:
    """Context manager: a module in eval mode (BN running stats), restored afterwards."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __enter__(self) -> None:
        self.was_training = self.module.training
        self.module.eval()

    def __exit__(self, *exc) -> None:
        self.module.train(self.was_training)
