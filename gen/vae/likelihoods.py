"""Per-pixel likelihoods p(x | z) for the VAE decoder's output maps.

All take images in the model range [-1, 1] and return the negative log-likelihood summed
over pixels, one value per image, in nats.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gen.vae.config import LIKELIHOODS

BIN_HALF_WIDTH = 1 / 255  # half of one 8-bit level in [-1, 1]


class Likelihood(nn.Module):
    """Bernoulli (binary squares: outputs are logits) or Gaussian / discretised Gaussian
    (natural images: outputs are means) with one learned scale, so the balance between
    reconstruction and KL is learned rather than hand-tuned (sigma-VAE, Rybkin et al. 2021)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        if kind not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {kind!r}; choose from {', '.join(LIKELIHOODS)}")
        self.kind = kind
        self.log_scale = nn.Parameter(torch.tensor(math.log(0.1)), requires_grad=kind != "bernoulli")

    def nll(self, output: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        if self.kind == "bernoulli":
            targets = (images + 1) / 2
            per_pixel = F.binary_cross_entropy_with_logits(output, targets, reduction="none")
        elif self.kind == "gaussian":
            per_pixel = (0.5 * ((images - output) / self.log_scale.exp()) ** 2 + self.log_scale
                         + 0.5 * math.log(2 * math.pi))
        else:
            per_pixel = -self._discretized_log_prob(output, images)
        return per_pixel.flatten(1).sum(1)

    def _discretized_log_prob(self, mean: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """Log mass of the 8-bit bin holding each pixel; the end bins reach to infinity."""
        normal = torch.distributions.Normal(mean, self.log_scale.exp())
        upper = torch.where(images > 1 - BIN_HALF_WIDTH, torch.ones_like(images),
                            normal.cdf(images + BIN_HALF_WIDTH))
        lower = torch.where(images < -1 + BIN_HALF_WIDTH, torch.zeros_like(images),
                            normal.cdf(images - BIN_HALF_WIDTH))
        return torch.log((upper - lower).clamp_min(1e-12))

    def mean_image(self, output: torch.Tensor) -> torch.Tensor:
        """The decoder's expected image in [-1, 1]."""
        if self.kind == "bernoulli":
            return torch.sigmoid(output) * 2 - 1
        return output.clamp(-1, 1)
