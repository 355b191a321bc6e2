"""Convolutional VAE with switchable CoordConv in the encoder and/or decoder.

Decoders: "dcgan" (dense to 4x4, stride-2 transposed convs) or "broadcast", the spatial
broadcast decoder (Watters et al. 2019): z tiled over the canvas with coordinates, then
stride-1 convs; the VAE analogue of the authors' tiled CoordConv generator.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gen.coordconv import coordinate_grid, make_conv, uses_coords
from gen.errors import InputError
from gen.layers import stage_widths
from gen.vae.config import VAEModelConfig


class Encoder(nn.Module):
    """Stride-2 convs (BN + ReLU) down to 4x4, then dense to the posterior mean and log-variance."""

    def __init__(self, config: VAEModelConfig) -> None:
        super().__init__()
        widths = stage_widths(config.resolution, config.width, config.max_width)
        layers: list[nn.Module] = []
        for index, (cin, cout) in enumerate(zip([config.channels] + widths[:-1], widths)):
            layers += [make_conv(cin, cout, 4, coord=uses_coords(config.encoder_coords, index), stride=2,
                                 padding=1, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.posterior = nn.Linear(widths[-1] * 16, 2 * config.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.posterior(self.features(x)).chunk(2, dim=1)
        return mean, log_var


class DCGANDecoder(nn.Module):
    """z -> dense 4x4 -> stride-2 transposed convs (BN + ReLU) -> per-pixel parameters."""

    def __init__(self, config: VAEModelConfig, out_channels: int) -> None:
        super().__init__()
        widths = list(reversed(stage_widths(config.resolution, config.width, config.max_width)))
        self.project = nn.Sequential(nn.Linear(config.latent_dim, widths[0] * 16),
                                     nn.Unflatten(1, (widths[0], 4, 4)), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        for index, (cin, cout) in enumerate(zip(widths, widths[1:] + [out_channels])):
            last = index == len(widths) - 1
            layers.append(make_conv(cin, cout, 4, coord=uses_coords(config.decoder_coords, index),
                                    transpose=True, stride=2, padding=1, bias=last))
            if not last:
                layers += [nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(self.project(z))


class BroadcastDecoder(nn.Module):
    """Spatial broadcast: z tiled with coordinates at `broadcast_resolution`, 3x3 convs,
    then transposed convs up to the image (a full-resolution broadcast costs too much on
    CPU). Coordinates are inherent here, so `decoder_coords` adds them to the upsampling."""

    def __init__(self, config: VAEModelConfig, out_channels: int) -> None:
        super().__init__()
        size, width = config.broadcast_resolution, config.broadcast_width
        if size > config.resolution or config.resolution % size:
            raise InputError(f"broadcast resolution {size} must divide resolution {config.resolution}")
        self.register_buffer("coords", coordinate_grid((size, size)), persistent=False)
        layers: list[nn.Module] = [nn.Conv2d(config.latent_dim + 2, width, 3, padding=1),
                                   nn.ReLU(inplace=True), nn.Conv2d(width, width, 3, padding=1),
                                   nn.ReLU(inplace=True)]
        ups = int(math.log2(config.resolution // size))
        for index in range(ups):
            last = index == ups - 1
            layers.append(make_conv(width, out_channels if last else width, 4, transpose=True,
                                    coord=uses_coords(config.decoder_coords, index), stride=2, padding=1))
            if not last:
                layers.append(nn.ReLU(inplace=True))
        if ups == 0:
            layers.append(nn.Conv2d(width, out_channels, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        size = self.coords.shape[-1]
        tiled = z[:, :, None, None].expand(-1, -1, size, size)
        coords = self.coords[None].expand(len(z), -1, -1, -1)
        return self.layers(torch.cat([tiled, coords], dim=1))


class VAE(nn.Module):
    """Encoder + decoder; the decoder outputs `out_channels` maps per image channel
    (1 for Bernoulli logits or a Gaussian mean)."""

    def __init__(self, config: VAEModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        decoder_class = DCGANDecoder if config.decoder == "dcgan" else BroadcastDecoder
        self.decoder = decoder_class(config, config.channels)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)
