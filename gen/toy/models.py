"""The paper's supervised toy-task models: CoordConv nets and the conv baselines they beat.

Coordinates enter and leave the models in the units of `AddCoords`: pixel p of a canvas of
size n is -1 + 2 p / (n - 1), so a centre and the coordinate channel at its pixel are equal.
A centre is (x, y), x the column. Architectures follow the authors' released code.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gen.coordconv import make_conv
from gen.errors import InputError

TASKS = ("classify", "render", "regress")


def to_unit(pixels: torch.Tensor, canvas: int) -> torch.Tensor:
    """Pixel coordinates 0..canvas-1 -> [-1, 1], the scale of the coordinate channels."""
    return pixels.float() * (2.0 / (canvas - 1)) - 1.0


def to_pixels(unit: torch.Tensor, canvas: int) -> torch.Tensor:
    """Inverse of `to_unit`."""
    return (unit + 1.0) * ((canvas - 1) / 2.0)


def _pointwise_stack(widths: list[int], coord_first: bool) -> nn.Sequential:
    """1x1 convs with ReLU between them; the first one may be a CoordConv."""
    layers: list[nn.Module] = []
    for index, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(make_conv(c_in, c_out, 1, coord=coord_first and index == 0))
        if index < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class CoordConvClassifier(nn.Module):
    """(x, y) -> 4096 logits: the centre tiled over the canvas, coordinates added, then 1x1
    convs 32-32-64-64-1. Every pixel compares its own coordinates with the centre, which is
    why it generalises to centres it never saw (about 7.5k parameters)."""

    def __init__(self, canvas: int = 64, widths: tuple[int, ...] = (32, 32, 64, 64)) -> None:
        super().__init__()
        self.canvas = canvas
        self.net = _pointwise_stack([2, *widths, 1], coord_first=True)

    def forward(self, centres: torch.Tensor) -> torch.Tensor:
        tiled = to_unit(centres, self.canvas)[:, :, None, None].expand(-1, -1, self.canvas, self.canvas)
        # channels_last runs these 1x1 convs about twice as fast on CPU
        return self.net(tiled.contiguous(memory_format=torch.channels_last))


class ConvHead(nn.Module):
    """3x3 convs 8-8-16-16-1 that paint a square around a one-hot map (the render head).

    He-normal init, as in the authors' code: with torch's default init the signal of a single
    hot pixel fades through the five layers and the head does not learn in a few epochs.
    """

    def __init__(self, widths: tuple[int, ...] = (8, 8, 16, 16)) -> None:
        super().__init__()
        channels = [1, *widths, 1]
        layers: list[nn.Module] = []
        for index, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            conv = nn.Conv2d(c_in, c_out, 3, padding=1)
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
            layers.append(conv)
            if index < len(channels) - 2:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.net(maps.contiguous(memory_format=torch.channels_last))


class CoordConvRenderer(nn.Module):
    """(x, y) -> per-pixel logits of the square: the CoordConv classifier, a softmax over
    the canvas that sharpens its output into a one-hot-like map, then the conv head.

    The head is translation-equivariant, so it paints any centre the classifier finds: that
    is what carries the classifier's generalisation over to rendering. Training supervises
    the centre logits too (the authors' `interm_loss='softmax'` option) and stops the render
    loss at the sharpened map, so the head does not settle on the blurred early maps (without
    the stop, trial runs stalled short of exact squares).
    """

    def __init__(self, canvas: int = 64) -> None:
        super().__init__()
        self.locate = CoordConvClassifier(canvas)
        self.paint = ConvHead()

    def forward_with_centre(self, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(square logits, centre logits), both N x 1 x canvas x canvas."""
        centre_logits = self.locate(centres)
        sharpened = centre_logits.flatten(1).softmax(dim=1).view_as(centre_logits)
        return self.paint(sharpened.detach()), centre_logits

    def forward(self, centres: torch.Tensor) -> torch.Tensor:
        return self.forward_with_centre(centres)[0]


class DeconvPainter(nn.Module):
    """(x, y) -> canvas logits by stride-2 transposed convs from a 1x1 map (the paper's
    deconvolution baseline for classification and rendering): BN + ReLU between layers,
    widths 64-64-64-32-32-1 for a 64-pixel canvas."""

    def __init__(self, canvas: int = 64) -> None:
        super().__init__()
        depth = int(math.log2(canvas))
        if canvas < 8 or 2**depth != canvas:
            raise InputError(f"the deconv baseline needs a power-of-two canvas >= 8, got {canvas}")
        self.canvas = canvas
        channels = [2, *[64] * (depth - 3), 32, 32, 1]
        layers: list[nn.Module] = []
        for index, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            # 3x3, stride 2, padding 1, output_padding 1: each layer exactly doubles the map
            layers.append(nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1))
            if index < depth - 1:
                layers += [nn.BatchNorm2d(c_out), nn.ReLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, centres: torch.Tensor) -> torch.Tensor:
        return self.net(to_unit(centres, self.canvas)[:, :, None, None])


class CoordConvRegressor(nn.Module):
    """One-hot map -> (x, y) in [-1, 1]: coordinates added, 1x1 convs 8-8-8, 3x3 convs 8-2,
    global max-pool. No non-linearity: the max picks the hot pixel, whose coordinate channels
    already hold the answer (about 900 parameters)."""

    def __init__(self, init_noise: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            make_conv(1, 8, 1, coord=True),
            nn.Conv2d(8, 8, 1),
            nn.Conv2d(8, 8, 1),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.Conv2d(8, 2, 3, padding=1),
        )
        self.init_noise = init_noise
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Start near a pass-through: the first layer copies the one-hot into every channel
        (coordinate weights near zero, i.e. nearly the plain conv), later layers are identity
        maps, all plus small noise. From a random start the max often sits on a corner, which
        passes no gradient to the one-hot path, and training stalls."""
        for index, conv in enumerate(self.net):
            out_channels, in_channels, height, width = conv.weight.shape
            conv.weight.normal_(0.0, self.init_noise / math.sqrt(in_channels * height * width))
            conv.bias.zero_()
            if index == 0:
                conv.weight[:, 0, 0, 0] += 1.0
            else:
                for channel in range(min(out_channels, in_channels)):
                    conv.weight[channel, channel, height // 2, width // 2] += 1.0

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.net(maps).amax(dim=(2, 3))


class ConvRegressor(nn.Module):
    """One-hot map -> (x, y) in [-1, 1] with plain convs: 3x3 conv + ReLU + 2x2 max-pool
    three times, a fourth conv, then dense 64 and dense 2 (the authors' conv baseline)."""

    def __init__(self, canvas: int = 64, width: int = 16) -> None:
        super().__init__()
        if canvas % 8:
            raise InputError(f"the conv regressor needs a canvas divisible by 8, got {canvas}")
        layers: list[nn.Module] = []
        c_in = 1
        for _ in range(3):
            layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = width
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Flatten(),
                   nn.Linear(width * (canvas // 8) ** 2, 64), nn.ReLU(), nn.Linear(64, 2)]
        self.net = nn.Sequential(*layers)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.net(maps)


def build_model(task: str, coordconv: bool, canvas: int = 64) -> nn.Module:
    """The paper's CoordConv model for a task, or the conv baseline it is compared with."""
    if task == "classify":
        return CoordConvClassifier(canvas) if coordconv else DeconvPainter(canvas)
    if task == "render":
        return CoordConvRenderer(canvas) if coordconv else DeconvPainter(canvas)
    if task == "regress":
        return CoordConvRegressor() if coordconv else ConvRegressor(canvas)
    raise InputError(f"unknown toy task {task!r}; choose from {', '.join(TASKS)}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
