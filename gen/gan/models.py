"""DCGAN-style generator and discriminator with switchable CoordConv, and the authors'
tiled-latent CoordConv generator.

Widths double as resolution halves (pytorch/examples DCGAN); `coord_layers` says which
convolutions see coordinates: "none", "first" or "all".
"""

from __future__ import annotations

import torch
from torch import nn

from gen.coordconv import coordinate_grid, make_conv, uses_coords
from gen.gan.config import DiscriminatorConfig, GeneratorConfig
from gen.layers import check_resolution, stage_widths


class DCGANGenerator(nn.Module):
    """z -> dense 4x4 map -> x2 upsampling blocks (BN + ReLU) -> tanh image.

    An upsampling block is a 4x4 stride-2 transposed conv (DCGAN) or nearest x2 then a 3x3
    conv, which avoids checkerboard specks (Odena et al. 2016) at 2.25x the compute. The
    last layer's bias starts negative so early samples are black backgrounds rather than
    grey noise: on binary images every stray bright pixel is a spurious object.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        widths = list(reversed(stage_widths(config.resolution, config.width, config.max_width)))
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
            else:
                blocks.append(make_conv(cin, cout, 4, coord=coord, transpose=True, stride=2, padding=1,
                                        bias=last))
            blocks += [nn.Tanh()] if last else [nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.blocks = nn.Sequential(*blocks)
        nn.init.constant_(self.blocks[-2].bias, config.output_bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.project(z))


class TiledGenerator(nn.Module):
    """The authors' CoordConv generator: z tiled over the canvas with coordinates, then a
    stack of 1x1 convs to the image, so every pixel is f(z, i, j).

    A 1x1 conv is a per-pixel linear map, so the stack runs as Linear layers on an
    N x H x W x C tensor (faster on CPU than NCHW 1x1 convs), and the first layer over
    [tiled z, coords] is computed as W_z z + W_c coords without materialising the tiled
    input. Widths run 4w, 2w, w: the authors' deeper stack is too slow to train on a CPU.

    Four generic changes make it train in a few thousand steps: a small MLP on z before tiling, so
    positions can spread evenly over the canvas instead of being a linear (so Gaussian)
    function of z; tanh ending that MLP, because positions on a bounded canvas need bounded
    features; He init, so the signal survives the stack; and a gain of `first_gain` on the
    first layer, so edges a pixel wide are in reach from [-1, 1] coordinates.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        check_resolution(config.resolution)
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
        self.pixel = 2 / (config.resolution - 1)  # one pixel in the [-1, 1] coordinates
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

    def first_layer(self, z: torch.Tensor, coords: torch.Tensor | None = None,
                    shift: torch.Tensor | None = None) -> torch.Tensor:
        """The first 1x1 conv over [tiled mapped z, coords] times the gain, N x H x W x C. The
        gain scales both small terms before the broadcast sum, not the big result; a `shift`
        of the coordinates joins the per-sample term, as coords_in is linear."""
        coords = self.coords if coords is None else coords
        gain = self.config.first_gain
        latent = self.latent_in(self.mapping(z))
        if shift is not None:
            latent = latent + self.coords_in(shift * self.pixel)
        return gain * latent[:, None, None, :] + gain * self.coords_in(coords)

    def render(self, z: torch.Tensor, coords: torch.Tensor | None = None,
               shift: torch.Tensor | None = None) -> torch.Tensor:
        """G's output, N x H x W x channels, at the canvas's pixel centres or at any (row,
        column) `coords` in [-1, 1] (H x W x 2, or N x H x W x 2 for a grid per sample): every
        pixel is f(z, i, j), so the image can be drawn between pixel centres too. `shift` (N x
        2, in pixels) offsets each sample's coordinates: the image moves by -shift."""
        if coords is not None and coords.dim() not in (3, 4):
            raise ValueError(f"coords must be H x W x 2 or N x H x W x 2, got shape {tuple(coords.shape)}")
        return self.layers(self.first_layer(z, coords, shift))

    def forward(self, z: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        return self.render(z, shift=shift).permute(0, 3, 1, 2)


class MinibatchStd(nn.Module):
    """Append the mean over features of the per-pixel std across the batch (ProGAN):
    lets D see a batch that lacks variety, a direct signal against mode collapse."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.float().var(dim=0, correction=0)
        std = (variance + 1e-8).sqrt().mean().to(x.dtype)  # epsilon: sqrt'(0) is infinite
        return torch.cat([x, std.expand(x.shape[0], 1, *x.shape[2:])], dim=1)


class Discriminator(nn.Module):
    """Stride-2 convs (k x k, padded to halve the map exactly) with leaky ReLU 0.2 down to
    4x4, then a dense logit.

    No batch norm: it mixes samples of a batch, which fights the R1 penalty and leaks
    real/fake batch statistics."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        widths = stage_widths(config.resolution, config.width, config.max_width)
        self.config = config
        layers: list[nn.Module] = []
        for index, (cin, cout) in enumerate(zip([config.channels] + widths[:-1], widths)):
            layers += [make_conv(cin, cout, config.kernel_size, coord=uses_coords(config.coord_layers, index),
                                 stride=2, padding=(config.kernel_size - 1) // 2),
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
    return TiledGenerator(config)
