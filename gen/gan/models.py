"""DCGAN-style generator and discriminator with switchable CoordConv, and the authors'
tiled-latent CoordConv generator.

Widths double as resolution halves (pytorch/examples DCGAN); `coord_layers` says which
convolutions see coordinates: "none", "first" or "all".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from gen.coordconv import coordinate_grid, make_conv, uses_coords

RESOLUTIONS = (32, 64, 128)


@dataclass
class GeneratorConfig:
    arch: str = "dcgan"  # "dcgan" or "tiled" (the authors' CoordConv generator)
    resolution: int = 64
    channels: int = 1
    latent_dim: int = 64
    width: int = 8
    max_width: int = 512
    coord_layers: str = "none"
    upsample: str = "transpose"  # "transpose" (4x4, stride 2) or "nearest" (x2 + 3x3 conv)
    output_bias: float = -3.0  # last layer's initial bias: start from a black background
    # The tiled fields default to the first tiled G, so checkpoints saved before they existed
    # load as what they were; the tuned values live in gen.gan.task.ARCH_DEFAULTS.
    mapping_layers: int = 0  # tiled: MLP layers on z before it is tiled (default GAN: 2)
    first_gain: float = 1.0  # tiled: gain on the first per-pixel layer (default GAN: 2)
    mapping_tanh: bool = False  # tiled: the mapping's last activation is tanh, not ReLU (default GAN: on)


@dataclass
class DiscriminatorConfig:
    resolution: int = 64
    channels: int = 1
    width: int = 8
    max_width: int = 512
    coord_layers: str = "none"
    minibatch_std: bool = True


def _stage_widths(resolution: int, width: int, max_width: int) -> list[int]:
    """Channel widths at resolutions 4, 8, ..., resolution / 2 (coarsest first)."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution}")
    stages = int(math.log2(resolution // 4))
    return [min(width * 2 ** (stages - 1 - k), max_width) for k in range(stages)]


class DCGANGenerator(nn.Module):
    """z -> dense 4x4 map -> x2 upsampling blocks (BN + ReLU) -> tanh image.

    An upsampling block is a 4x4 stride-2 transposed conv (DCGAN) or nearest x2 then a 3x3
    conv, which avoids checkerboard specks (Odena et al. 2016) at 2.25x the compute. The
    last layer's bias starts negative so early samples are black backgrounds rather than
    grey noise: on binary images every stray bright pixel is a spurious object.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        widths = _stage_widths(config.resolution, config.width, config.max_width)
        self.config = config
        self.project = nn.Sequential(
            nn.Linear(config.latent_dim, widths[0] * 16, bias=False),
            nn.Unflatten(1, (widths[0], 4, 4)),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        outs = widths[1:] + [config.channels]
        for index, (cin, cout) in enumerate(zip(widths, outs)):
            last = index == len(widths) - 1
            coord = uses_coords(config.coord_layers, index)
            if config.upsample == "nearest":
                blocks += [nn.Upsample(scale_factor=2, mode="nearest"),
                           make_conv(cin, cout, 3, coord=coord, padding=1, bias=last)]
            elif config.upsample == "transpose":
                blocks.append(make_conv(cin, cout, 4, coord=coord, transpose=True, stride=2, padding=1,
                                        bias=last))
            else:
                raise ValueError(f"unknown upsample {config.upsample!r}; choose nearest or transpose")
            blocks += [nn.Tanh()] if last else [nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.blocks = nn.Sequential(*blocks)
        nn.init.constant_(self.blocks[-2].bias, config.output_bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.project(z))


class TiledGenerator(nn.Module):
    """The authors' CoordConv generator: z tiled over the canvas with coordinates, then a
    stack of 1x1 convs to the image, so every pixel is f(z, i, j).

    A 1x1 conv is a per-pixel linear map, so the stack runs as Linear layers on an
    N x H x W x C tensor (several times faster on CPU than NCHW 1x1 convs), and the first
    layer over [tiled z, coords] is computed as W_z z + W_c coords, the same linear map
    without materialising N x (latent + 2) x H x W. Widths run 4w, 2w, w (the authors'
    512-256-256-128-64 stack plus two 3x3 convs is far too slow for a CPU budget; one hidden
    layer already draws an axis-aligned square).

    Four changes make it train in a CPU budget: a small MLP on z before tiling, so object
    positions can be spread evenly over the canvas rather than be a linear (so Gaussian)
    function of z; tanh as that MLP's last activation, because one tanh unit of a Gaussian
    is already near-uniform on (-1, 1) (2 Phi(x) - 1 ~ tanh(0.85 x)), as positions on a
    bounded canvas must be (with a ReLU there, squares by the edges came at half the rate of
    those in the middle); He init, so the signal survives the stack (with torch's default
    init the first images are flat grey at 1% of the output range); and a gain of
    `first_gain` on the first layer, so edges a pixel wide are in reach from [-1, 1] coords.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        if config.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {config.resolution}")
        if config.mapping_tanh and config.mapping_layers < 1:
            raise ValueError("mapping_tanh needs mapping_layers >= 1")
        self.config = config
        widths = [min(config.width * m, config.max_width) for m in (4, 2, 1)]
        mapping: list[nn.Module] = []
        features = config.latent_dim
        for index in range(config.mapping_layers):
            bounded = config.mapping_tanh and index == config.mapping_layers - 1
            mapping += [nn.Linear(features, widths[0]), nn.Tanh() if bounded else nn.ReLU()]
            features = widths[0]
        self.mapping = nn.Sequential(*mapping)
        self.latent_in = nn.Linear(features, widths[0])
        self.coords_in = nn.Linear(2, widths[0], bias=False)
        grid = coordinate_grid((config.resolution, config.resolution)).permute(1, 2, 0)
        self.register_buffer("coords", grid.contiguous(), persistent=False)
        layers: list[nn.Module] = []
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.ReLU(), nn.Linear(cin, cout)]
        layers += [nn.ReLU(), nn.Linear(widths[-1], config.channels), nn.Tanh()]
        self.layers = nn.Sequential(*layers)
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
        nn.init.constant_(self.layers[-2].bias, config.output_bias)

    def first_layer(self, z: torch.Tensor) -> torch.Tensor:
        """The first 1x1 conv over [tiled mapping(z), coords] times the gain, N x H x W x C.
        The gain scales both small terms before the broadcast sum, not the big result."""
        gain = self.config.first_gain
        return gain * self.latent_in(self.mapping(z))[:, None, None, :] + gain * self.coords_in(self.coords)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(self.first_layer(z)).permute(0, 3, 1, 2)


class MinibatchStd(nn.Module):
    """Append the mean over features of the per-pixel std across the batch (ProGAN):
    lets D see a batch that lacks variety, a direct signal against mode collapse."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.float().var(dim=0, correction=0)
        std = (variance + 1e-8).sqrt().mean().to(x.dtype)  # epsilon: sqrt'(0) is infinite
        return torch.cat([x, std.expand(x.shape[0], 1, *x.shape[2:])], dim=1)


class Discriminator(nn.Module):
    """Stride-2 convs with leaky ReLU 0.2 down to 4x4, then a dense logit.

    No batch norm: it mixes samples of a batch, which fights the R1 penalty and leaks
    real/fake batch statistics."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        widths = list(reversed(_stage_widths(config.resolution, config.width, config.max_width)))
        self.config = config
        layers: list[nn.Module] = []
        for index, (cin, cout) in enumerate(zip([config.channels] + widths[:-1], widths)):
            layers += [make_conv(cin, cout, 4, coord=uses_coords(config.coord_layers, index),
                                 stride=2, padding=1),
                       nn.LeakyReLU(0.2, inplace=True)]
        if config.minibatch_std:
            layers.append(MinibatchStd())
        layers += [nn.Flatten(), nn.Linear((widths[-1] + int(config.minibatch_std)) * 16, 1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze(1)


def build_generator(config: GeneratorConfig) -> nn.Module:
    if config.arch == "dcgan":
        return DCGANGenerator(config)
    if config.arch == "tiled":
        return TiledGenerator(config)
    raise ValueError(f"unknown generator arch {config.arch!r}; choose dcgan or tiled")
