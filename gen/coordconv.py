"""CoordConv layers (Liu et al. 2018): convolutions that also see where they are.

`AddCoords` appends coordinate channels after the input channels, in this order:

- rank 1 (N, C, L):        l
- rank 2 (N, C, H, W):     i (row, along H), j (column, along W)
- rank 3 (N, C, D, H, W):  d, i, j
- then, with ``with_r=True``, r = Euclidean distance from the centre in those units.

Each coordinate is scaled linearly to [-1, 1] over its own axis, so non-square maps are
right (the authors' TensorFlow code swapped the extents). An axis of length 1 gets 0.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gen.configs import COORD_PLACEMENTS

_CONV_CLASSES = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
# Where the CoordConv layers add their coordinate term as a position bias (the faster form on
# the CPU: docs/benchmarks.md); elsewhere they concatenate, the textbook form, until the device
# check (benchmarks/gpu_check.py times both) shows the other faster there.
POSITION_BIAS_DEVICES = frozenset({"cpu"})


def coordconv_form(device: torch.device | str) -> str:
    """The form gen's CoordConv layers compute on `device`: "position bias" or "concatenating"."""
    return "position bias" if torch.device(device).type in POSITION_BIAS_DEVICES else "concatenating"


def coordinate_grid(
    spatial_shape: tuple[int, ...],
    with_r: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Coordinate channels for one map: shape (rank [+1], *spatial_shape), values in [-1, 1]."""
    axes = [
        torch.linspace(-1.0, 1.0, n, device=device, dtype=torch.float32)
        if n > 1
        else torch.zeros(1, device=device)
        for n in spatial_shape
    ]
    channels = list(torch.meshgrid(*axes, indexing="ij"))
    if with_r:
        channels.append(torch.sqrt(sum(c * c for c in channels)))
    return torch.stack(channels).to(dtype)


class AddCoords(nn.Module):
    """Concatenate coordinate channels to a rank-1, 2 or 3 feature map.

    Grids are cached per (shape, device, dtype): they are constants, and rebuilding them
    every step would cost a kernel launch per layer on GPU. They are built outside inference
    mode, so a grid first made while sampling can still be saved for a training backward.
    """

    def __init__(self, rank: int = 2, with_r: bool = False) -> None:
        super().__init__()
        if rank not in (1, 2, 3):
            raise ValueError(f"AddCoords rank must be 1, 2 or 3, got {rank}")
        self.rank = rank
        self.with_r = with_r
        self._cache: dict[tuple, torch.Tensor] = {}

    @property
    def extra_channels(self) -> int:
        return self.rank + int(self.with_r)

    def grid(self, spatial_shape: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The (cached) coordinate channels for one map of `spatial_shape`."""
        key = (spatial_shape, device, dtype)
        if key not in self._cache:
            with torch.inference_mode(False):
                self._cache[key] = coordinate_grid(spatial_shape, self.with_r, device, dtype)
        return self._cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.rank + 2:
            raise ValueError(
                f"AddCoords(rank={self.rank}) expects a {self.rank + 2}-D input, got {x.dim()}-D"
            )
        spatial_shape = tuple(x.shape[2:])
        coords = self.grid(spatial_shape, x.device, x.dtype)
        coords = coords.unsqueeze(0).expand(x.shape[0], *coords.shape)
        if self.rank == 2 and not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last
        ):  # concatenated along the channels of NHWC views: channels_last in one copy
            nhwc = torch.cat([x.permute(0, 2, 3, 1), coords.permute(0, 2, 3, 1)], dim=3)
            return nhwc.permute(0, 3, 1, 2)
        return torch.cat([x, coords], dim=1)

    def extra_repr(self) -> str:
        return f"rank={self.rank}, with_r={self.with_r}"


def _coord_layer(base: type[nn.Module], rank: int) -> type[nn.Module]:
    """Build a drop-in subclass of a torch conv layer that also sees coordinates.

    The layer keeps the torch constructor signature (plus ``with_r``); its weight covers
    the input channels first and the coordinate channels last, so zeroing the last ones
    gives back the plain convolution. A convolution is linear in its input, so the one over
    [x, coords] is conv(x; W_x) + conv(coords; W_c): the second term does not depend on the
    batch, so on the CPU it is one small matrix product, W_c times the coordinates' cached
    patches, added as a position-dependent bias (the same function and parameters as
    concatenating, without widening every image's input). `coordconv_form` says which form
    runs on a device.
    """
    transposed = issubclass(base, nn.modules.conv._ConvTransposeNd)

    class _CoordLayer(base):
        def __init__(self, in_channels: int, out_channels: int, *args, with_r: bool = False,
                     **kwargs) -> None:
            if kwargs.get("groups", 1) != 1:
                raise ValueError("CoordConv layers support groups=1 only")
            add_coords = AddCoords(rank, with_r)
            super().__init__(in_channels + add_coords.extra_channels, out_channels, *args,
                             **kwargs)
            self.add_coords = add_coords
            self.data_channels = in_channels
            self._patches: dict[tuple, torch.Tensor] = {}

        def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
            if x.dim() != rank + 2:
                raise ValueError(f"{type(self).__name__} expects a {rank + 2}-D input, got {x.dim()}-D")
            if output_size is not None and not transposed:
                raise ValueError(f"{type(self).__name__} takes no output_size: only transposed layers do")
            if x.device.type in POSITION_BIAS_DEVICES:
                return self.position_bias_forward(x, output_size)
            return self.concatenating_forward(x, output_size)

        def position_bias_forward(self, x: torch.Tensor,
                                  output_size: list[int] | None = None) -> torch.Tensor:
            """conv(x; W_x) + W_c @ patches(coords) + b: the coordinate term as one matrix
            product, with the bias added to it: its gradient sums over the batch anyway, so
            the convolution's backward is spared a reduction of its own for the bias."""
            split = 0 if transposed else 1  # torch keeps in_channels on dim 0 for transposed convs
            data_weight, coord_weight = self.weight.split(
                [self.data_channels, self.add_coords.extra_channels], dim=split)
            if transposed:
                output_padding = self._output_padding(x, output_size, self.stride, self.padding,
                                                      self.kernel_size, rank, self.dilation)
                data = self._transposed(x, data_weight, None, output_padding)
                coord_weight = coord_weight.transpose(0, 1)  # (out, coords, *kernel) like a conv's
            else:
                output_padding = []
                data = self._conv_forward(x, data_weight, None)
            patches = self.coordinate_patches(tuple(x.shape[2:]), tuple(output_padding), x.device,
                                              data.dtype)
            coord_weight = coord_weight.reshape(self.out_channels, -1)
            if self.bias is None:
                position = coord_weight @ patches
            else:
                position = torch.addmm(self.bias.unsqueeze(1), coord_weight, patches)
            # In place (the output keeps the convolution's memory layout): a fresh output the
            # size of the batch's would cost more than the add itself; the convolution's
            # backward does not need its output.
            return data.add_(position.view(1, self.out_channels, *data.shape[2:]))

        def coordinate_patches(self, spatial_shape: tuple[int, ...], output_padding: tuple[int, ...],
                               device: torch.device, dtype: torch.dtype) -> torch.Tensor:
            """The coordinates' patches, (coordinate x kernel tap, output position), cached:
            they are constants. Made by the layer's own convolution of the coordinates with a
            one-hot weight per tap, so stride, padding, dilation and padding mode all hold; in
            float64 on the CPU, so they are exact whatever the device's convolutions round to."""
            key = (spatial_shape, output_padding, device, dtype)
            if key not in self._patches:
                with torch.inference_mode(False), torch.no_grad(), torch.autocast("cpu", enabled=False):
                    coords = coordinate_grid(spatial_shape, self.add_coords.with_r, "cpu", torch.float64)
                    coords = coords.unsqueeze(0)
                    extra, taps = self.add_coords.extra_channels, math.prod(self.kernel_size)
                    one_hot = torch.eye(extra * taps, dtype=torch.float64)
                    if transposed:
                        one_hot = one_hot.view(extra, taps, extra * taps).transpose(1, 2)
                        one_hot = one_hot.reshape(extra, extra * taps, *self.kernel_size)
                        patches = self._transposed(coords, one_hot, None, list(output_padding))
                    else:
                        one_hot = one_hot.view(extra * taps, extra, *self.kernel_size)
                        patches = self._conv_forward(coords, one_hot, None)
                    self._patches[key] = patches.reshape(extra * taps, -1).to(device, dtype)
            return self._patches[key]

        def concatenating_forward(self, x: torch.Tensor,
                                  output_size: list[int] | None = None) -> torch.Tensor:
            """The textbook form: the torch layer over [x, coordinates]. The same function."""
            if transposed:
                return base.forward(self, self.add_coords(x), output_size)
            return base.forward(self, self.add_coords(x))

        def _transposed(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                        output_padding: list[int]) -> torch.Tensor:
            return nn.functional.conv_transpose2d(x, weight, bias, self.stride, self.padding,
                                                  output_padding, self.groups, self.dilation)

    _CoordLayer.__name__ = _CoordLayer.__qualname__ = "Coord" + base.__name__
    return _CoordLayer


CoordConv1d = _coord_layer(nn.Conv1d, 1)
CoordConv2d = _coord_layer(nn.Conv2d, 2)
CoordConv3d = _coord_layer(nn.Conv3d, 3)
CoordConvTranspose2d = _coord_layer(nn.ConvTranspose2d, 2)


def make_conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    coord: bool = False,
    rank: int = 2,
    transpose: bool = False,
    with_r: bool = False,
    **kwargs,
) -> nn.Module:
    """The one place model code picks a plain or a CoordConv layer from a flag."""
    if transpose:
        if rank != 2:
            raise ValueError("transposed CoordConv is implemented for rank 2 only")
        cls = CoordConvTranspose2d if coord else nn.ConvTranspose2d
    else:
        cls = {1: CoordConv1d, 2: CoordConv2d, 3: CoordConv3d}[rank] if coord else _CONV_CLASSES[rank]
    if coord:
        kwargs["with_r"] = with_r
    return cls(in_channels, out_channels, kernel_size, **kwargs)


def uses_coords(placement: str, index: int) -> bool:
    """Whether conv layer `index` of a stack is CoordConv under a placement: "none",
    "first" (layer 0 only) or "all"."""
    if placement not in COORD_PLACEMENTS:
        raise ValueError(f"coord_layers must be one of {COORD_PLACEMENTS}, got {placement!r}")
    return placement == "all" or (placement == "first" and index == 0)
