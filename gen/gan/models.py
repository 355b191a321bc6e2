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
    input. Widths run 4w, 2w, w: the authors' deeper stack is too slow for a CPU budget.

    Four changes of ours make it train in that budget: a small MLP on z before tiling, so
    positions can spread evenly over the canvas instead of being a linear (so Gaussian)
    function of z; tanh ending that MLP, because positions on a bounded canvas need bounded
    features; He init, so the signal survives the stack; and a gain of `first_gain` on the
    first layer, so edges a pixel wide are in reach from [-1, 1] coordinates.

    Two options for scenes of several objects: `objects` layers drawn by the one stack, each
    a mask in its own colour, so one layer need only draw one object; and `radial`, each
    layer drawn about a centre from z with the distance from it as a coordinate, so a circle
    is one unit rather than a polygon of half-planes. `box_distance` adds the L-infinity
    distance, so a square is one unit too; its weights start at 0, as a G that starts
    drawing boxes from random weights loses to D within about a thousand steps. `kind_coins`
    makes the kind a discrete input instead, because a continuous G otherwise draws the mean
    of a square and a circle: the sign of one latent entry per layer picks whether its
    distance is Euclidean (a disc) or L4 (a box), fed to the same unit. L4, not L-infinity
    (`coin_box`): at sub-pixel centres one threshold then draws both kinds at the data's
    sizes. Box layers turn from the one distance to the other over the first `kind_warmup`
    steps (sharp boxes from the start lose to D, as above), and the layers start apart and
    in colours of their own (two layers started at one centre, or in one colour, blend into
    one object); `colour_start` "data" takes those colours from the data, as a drawn colour
    far from every object's (green, on red and blue shapes) can take both layers to one.
    `snap_centres` rounds each centre to the nearest pixel centre, as the data's objects
    sit, with the gradient passed straight through: at a pixel centre the thresholds that
    draw both kinds at the data's sizes span half a pixel, off the grid under a fifth.
    `chained_centres` gives each layer's centre its own slice of z, so layers do not start out
    moving together; `offset_coords` False draws each layer from its distance alone, so every
    object is symmetric about its centre, as the data's are. `centre_spread` starts the
    centres spread over z rather than at one point per layer; `latent_masks` False hands each
    layer's mask from z to its kind and its place about the centre alone over the warm-up, one
    mask per kind for every z after it, as the data's objects of a kind are all one shape;
    `colour_coin` lets a coin from z move the colours one layer on (two layers: swap them), so
    each colour is drawn by more than one layer and the layout need not keep one colour on one
    side of another.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        check_resolution(config.resolution)
        self.config = config
        widths = [min(config.width * m, config.max_width) for m in (4, 2, 1)]
        chained = config.chained_centres
        self.centre_slice = (config.latent_dim - config.coin_entries) // config.objects
        mapping: list[nn.Module] = []
        features = config.latent_dim
        for index in range(config.mapping_layers):
            bounded = config.mapping_tanh and index == config.mapping_layers - 1
            mapping += [nn.Linear(features, widths[0] * config.objects), nn.Tanh() if bounded else nn.ReLU()]
            features = widths[0] * config.objects
        self.mapping = nn.Sequential(*mapping)
        self.latent_in = nn.Linear(features, widths[0] * config.objects)
        self.mask_offsets = None
        if not config.latent_masks:  # mask_blend: how far z's part in the masks has given way to them
            self.mask_offsets = nn.Parameter(torch.zeros(config.objects, widths[0]))
            self.register_buffer("mask_blend", torch.ones(()))
        self.colour_in = nn.Linear(features, config.channels * config.objects) if config.objects > 1 else None
        self.coords_in = nn.Linear(2, widths[0], bias=False) if config.offset_coords else None
        self.centre_in = nn.Linear(features, 2 * config.objects) if config.radial and not chained else None
        self.centre_heads = nn.ModuleList(
            nn.Sequential(nn.Linear(self.centre_slice + 2 * index, widths[0]), nn.ReLU(),
                          nn.Linear(widths[0], widths[0]), nn.Tanh(), nn.Linear(widths[0], 2))
            for index in range(config.objects)) if chained else None
        self.radius_in = nn.Linear(1, widths[0], bias=False) if config.radial else None
        self.box_in = nn.Linear(1, widths[0], bias=False) if config.box_distance else None
        if config.kind_coins:  # how far box layers have turned from Euclidean to L4 distance
            self.register_buffer("kind_blend", torch.ones(()))
        grid = coordinate_grid((config.resolution, config.resolution)).permute(1, 2, 0)
        self.register_buffer("coords", grid.contiguous(), persistent=False)
        self.pixel = 2 / (config.resolution - 1)  # one pixel in the [-1, 1] coordinates
        # half a pixel, squared, under the radius's square root: bounds its gradient at the centre
        self.softening = (1 / (config.resolution - 1)) ** 2
        layers: list[nn.Module] = []
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.ReLU(), nn.Linear(cin, cout)]
        layers += [nn.ReLU(), nn.Linear(widths[-1], 1 if config.objects > 1 else config.channels), nn.Tanh()]
        self.layers = nn.Sequential(*layers)
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
        nn.init.constant_(self.layers[-2].bias, config.output_bias)
        centre_outs = [self.centre_in] if self.centre_in is not None else []
        centre_outs += [head[-1] for head in self.centre_heads] if chained else []
        for layer in centre_outs:  # centres start the same for every z, none at an edge
            nn.init.zeros_(layer.weight)
        if config.kind_coins and config.objects > 1:  # layers apart and in colours of their own
            angle = torch.arange(config.objects) * (2 * torch.pi / config.objects) + torch.pi / 4
            start = torch.atanh(0.35 * torch.stack([angle.cos(), angle.sin()], 1))
            with torch.no_grad():
                if chained:
                    for head, bias in zip(self.centre_heads, start):
                        head[-1].bias.copy_(bias)
                else:
                    self.centre_in.bias.copy_(start.flatten())
            if config.colour_start == "drawn":
                nn.init.normal_(self.colour_in.bias)
        if config.colour_start == "data":
            self.start_colours_from(config.start_colours)
        if config.centre_spread > 0:
            self.spread_centres(config.centre_spread)
        if self.box_in is not None:
            nn.init.zeros_(self.box_in.weight)

    @torch.no_grad()
    def start_colours_from(self, colours: tuple[tuple[float, ...], ...]) -> None:
        """Start each layer in a colour measured from the data, held off the sigmoid's flat
        ends (0.2 to 0.8), where its gradient vanishes."""
        if len(colours) != self.config.objects or any(len(c) != self.config.channels for c in colours):
            raise ValueError(f"need {self.config.objects} start colours of {self.config.channels} channels, "
                             f"got {colours}: runs.fit_to_data measures them from the data as a run "
                             "starts (or GANConfig.with_start_colours sets them)")
        start = torch.tensor(colours).clamp(0.2, 0.8)
        self.colour_in.bias.copy_(torch.logit(start).flatten())

    @torch.no_grad()
    def spread_centres(self, pixels: float) -> None:
        """Start the centre head's weights at random, scaled so that each centre's pre-tanh
        coordinates spread this many pixels (standard deviation over normal z) about the
        start they had: the layers then start spread over the canvas, as the data's objects
        are, instead of at one centre each that G must learn to spread out."""
        weight = torch.randn_like(self.centre_in.weight)
        spread = self.mapping(torch.randn(4096, self.config.latent_dim)) @ weight.T
        scale = pixels * self.pixel / spread.std(0)
        self.centre_in.weight.copy_(weight * scale[:, None])
        self.centre_in.bias.sub_(spread.mean(0) * scale)

    def warm_up(self, step: int) -> None:
        """Over the first `kind_warmup` training steps, turn box layers from Euclidean to
        their box distance (kind coins) and hand the masks from z to one per kind and layer
        (without latent masks): a G handed sharp boxes, or masks it cannot vary, at the start
        loses to D."""
        warmup = self.config.kind_warmup
        blend = min(1.0, step / warmup) if warmup else 1.0
        if self.config.kind_coins:
            self.kind_blend.fill_(blend)
        if not self.config.latent_masks:
            self.mask_blend.fill_(blend)

    def kinds(self, z: torch.Tensor) -> torch.Tensor | None:
        """N x objects bools, True where a layer measures its box distance (draws a box):
        the signs of z's last `objects` entries, so each is a fair coin under either latent
        distribution. None without `kind_coins`."""
        if not self.config.kind_coins:
            return None
        return z[:, -self.config.objects:] > 0

    def centres(self, mapped: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """N x objects x 2 layer centres in [-1, 1] (row, column) from the mapped z (radial
        layers only), on the pixel grid with `snap_centres`: rounded in fp32, as a bf16 centre
        can be a tenth of a pixel off. With `chained_centres` they come from z instead."""
        if self.centre_heads is not None:
            centres = self.chained_centres(z)
        else:
            centres = torch.tanh(self.centre_in(mapped).float()).view(len(mapped), self.config.objects, 2)
        if self.config.snap_centres:
            centres = centres + (((centres + 1) / self.pixel).round() * self.pixel - 1 - centres).detach()
        return centres

    def chained_centres(self, z: torch.Tensor | None) -> torch.Tensor:
        """N x objects x 2 centres, each layer's from its own slice of z and the centres of the
        layers before it: a later object can then only follow an earlier one by learning to,
        where centres from one shared mapping start out moving together."""
        if z is None:
            raise ValueError("chained centres are drawn from z: pass it to centres() and first_layers()")
        centres: list[torch.Tensor] = []
        for index, head in enumerate(self.centre_heads):
            part = z[:, index * self.centre_slice:(index + 1) * self.centre_slice]
            centres.append(torch.tanh(head(torch.cat([part, *centres], 1)).float()))
        return torch.stack(centres, 1)

    def colour_turns(self, z: torch.Tensor) -> torch.Tensor | None:
        """N bools, True where the layers' colours move one layer on (layer k takes layer k - 1's
        colour; two layers swap them): the sign of the latent entry before the kind coins. None
        without `colour_coin`."""
        if not self.config.colour_coin:
            return None
        return z[:, -self.config.coin_entries] > 0

    def coin_box_distance(self, offset: torch.Tensor) -> torch.Tensor:
        """A kind-coin box layer's distance from its centre, of N x H x W x 2 offsets: L4,
        softened at the centre as the radius is, or L-infinity (`coin_box`)."""
        if self.config.coin_box == "linf":
            return offset.abs().amax(-1, keepdim=True)
        return (offset.square().square().sum(-1, keepdim=True) + self.softening**2).sqrt().sqrt()

    def first_layers(self, mapped: torch.Tensor, coords: torch.Tensor | None = None,
                     shift: torch.Tensor | None = None,
                     kinds: torch.Tensor | None = None, z: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The first 1x1 conv over [tiled mapped z, coords] times the gain, one N x H x W x C
        tensor per object layer. The gain scales both small terms before the broadcast sum,
        not the big result; a `shift` of the coordinates joins the per-sample term, as
        coords_in is linear. `kinds` (`self.kinds(z)`) picks each layer's distance; chained
        centres need `z`."""
        coords = self.coords if coords is None else coords
        gain = self.config.first_gain
        latent = self.latent_in(mapped).view(len(mapped), self.config.objects, -1)
        if self.mask_offsets is not None:
            offsets = self.mask_offsets.to(latent.dtype).expand_as(latent)  # bf16 under autocast
            latent = latent.lerp(offsets, self.mask_blend.to(latent.dtype))
        shift = None if shift is None else shift * self.pixel
        if self.config.radial:
            centres = self.centres(mapped, z)
            if shift is not None:
                centres = centres - shift[:, None]
            if self.coords_in is not None:
                latent = latent - self.coords_in(centres)
        elif shift is not None:
            latent = latent + self.coords_in(shift)[:, None]
        pixels = gain * self.coords_in(coords) if self.coords_in is not None else 0
        firsts = []
        for index in range(self.config.objects):
            first = gain * latent[:, index, None, None, :] + pixels
            if self.config.radial:
                offset = coords - centres[:, index, None, None, :]
                radius = (offset.square().sum(-1, keepdim=True) + self.softening).sqrt()
                if kinds is not None:
                    box = kinds[:, index, None, None, None]
                    box_distance = radius.lerp(self.coin_box_distance(offset), self.kind_blend)
                    radius = torch.where(box, box_distance, radius)
                first = first + gain * self.radius_in(radius)
                if self.box_in is not None:
                    first = first + gain * self.box_in(offset.abs().amax(-1, keepdim=True))
            firsts.append(first)
        return firsts

    def render(self, z: torch.Tensor, coords: torch.Tensor | None = None,
               shift: torch.Tensor | None = None) -> torch.Tensor:
        """G's output, N x H x W x channels, at the canvas's pixel centres or at any (row,
        column) `coords` in [-1, 1] (H x W x 2, or N x H x W x 2 for a grid per sample): every
        pixel is f(z, i, j), so the image can be drawn between pixel centres too. `shift` (N x
        2, in pixels) offsets each sample's coordinates: the image moves by -shift.

        With several object layers, each is a mask in [0, 1] drawn by the shared stack in a
        colour from z, and the layers are screen-blended onto black. The stack runs on one
        layer at a time, so each of its passes is the size of a one-layer G's."""
        if coords is not None and coords.dim() not in (3, 4):
            raise ValueError(f"coords must be H x W x 2 or N x H x W x 2, got shape {tuple(coords.shape)}")
        mapped = self.mapping(z)
        layers = [self.layers(first) for first in self.first_layers(mapped, coords, shift, self.kinds(z), z)]
        if self.config.objects == 1:
            return layers[0]
        alpha = (torch.stack(layers, 1) + 1) / 2
        colour = torch.sigmoid(self.colour_in(mapped)).view(len(z), self.config.objects, 1, 1, -1)
        turns = self.colour_turns(z)
        if turns is not None:
            colour = torch.where(turns[:, None, None, None, None], colour.roll(1, dims=1), colour)
        return 1 - 2 * (1 - alpha * colour).prod(dim=1)

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
