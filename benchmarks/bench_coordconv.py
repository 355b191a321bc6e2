"""CoordConv's cost per layer of the DCGAN the presets train, in both of gen's forms.

The paper claims CoordConv costs no computational efficiency. For every CoordConv layer of
gen's DCGAN G and D (`--coordconv --arch dcgan`) at each of `--widths` (8 and 16 are the
presets' widths, 64 the pytorch/examples reference's), on the input that layer sees in
training, this times forward + backward of the plain convolution over the same data
channels, of the coordinate term added as a position bias (the layer's form on the CPU) and
of the textbook concatenation of coordinate channels (its form on other devices), side by
side; the last row of each table sums the layers. The whole training step's ratio is
`bench_reference.py --parts coordconv`.

Usage: python benchmarks/bench_coordconv.py [--widths 8,16,64] [--device cuda] [--threads 2]
       [--calls 10] [--repeats 5] [--batch 64] [--bf16] [--channels-last]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from gen.coordconv import CoordConv2d, CoordConvTranspose2d
from gen.gan.config import gan_preset
from gen.gan.models import Discriminator, build_generator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import alternating_medians, timing_device  # noqa: E402

COORD_LAYERS = (CoordConv2d, CoordConvTranspose2d)


def coordconv_layers(width: int, batch: int, device: torch.device,
                     layout: torch.memory_format) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """(name, layer, input shape) of every CoordConv layer of the DCGAN G and D at `width`."""
    preset = gan_preset(coordconv=True, arch="dcgan", generator={"width": width},
                        discriminator={"width": width}).model.for_data(3, 64)
    networks = {"G": build_generator(preset.generator), "D": Discriminator(preset.discriminator)}
    found: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    hooks = []
    for prefix, network in networks.items():

        def record(layer: nn.Module, inputs: tuple[torch.Tensor, ...], prefix: str = prefix) -> None:
            found.append((prefix, layer, tuple(inputs[0].shape)))

        hooks += [module.register_forward_pre_hook(record) for module in network.modules()
                  if isinstance(module, COORD_LAYERS)]
        network.to(device, memory_format=layout)
    with torch.no_grad():
        images = networks["G"](torch.randn(batch, preset.generator.latent_dim, device=device))
        networks["D"](images.contiguous(memory_format=layout))
    for hook in hooks:
        hook.remove()
    named = []
    for prefix, layer, shape in found:
        kind = "deconv" if isinstance(layer, nn.ConvTranspose2d) else "conv"
        name = f"{prefix} {kind} {layer.data_channels}->{layer.out_channels} @{shape[-1]}"
        named.append((name, layer, shape))
    return named


def plain_twin(layer: nn.Module) -> nn.Module:
    """The torch convolution `layer` extends, over its data channels only."""
    base = type(layer).__mro__[1]
    kwargs = {"stride": layer.stride, "padding": layer.padding, "dilation": layer.dilation,
              "bias": layer.bias is not None, "padding_mode": layer.padding_mode}
    if isinstance(layer, nn.ConvTranspose2d):
        kwargs["output_padding"] = layer.output_padding
    return base(layer.data_channels, layer.out_channels, layer.kernel_size, **kwargs)


def forward_backward(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                     bf16: bool) -> Callable[[], None]:
    """One forward (under bf16 autocast if asked) and backward with a dense upstream gradient,
    as the layer gets in training."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        upstream = torch.randn_like(forward(x))

    def call() -> None:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            out = forward(x)
        out.backward(upstream)

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="8,16,64", help="Comma-separated model widths.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=10, help="Calls per candidate in each round.")
    parser.add_argument("--repeats", type=int, default=5, help="Alternating rounds; the median is reported.")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--bf16", action="store_true", help="Forward under bf16 autocast (--bf16 training).")
    parser.add_argument("--channels-last", action="store_true",
                        help="Layers and inputs in channels_last (--channels-last training).")
    args = parser.parse_args()
    try:
        widths = [int(width) for width in args.widths.split(",")]
    except ValueError:
        parser.error(f"--widths takes comma-separated integers, got {args.widths!r}")
    device = timing_device(args.device, args.threads)
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"batch {args.batch}, bf16 {args.bf16}, channels_last {args.channels_last}, "
          f"{args.repeats} x {args.calls} calls")
    for width in widths:
        print(f"\n| width {width} layer | conv ms | position bias ms | position bias x conv | "
              f"concatenating ms | concatenating x conv |\n|---|---:|---:|---:|---:|---:|")
        totals = [0.0, 0.0, 0.0]
        for name, layer, shape in coordconv_layers(width, args.batch, device, layout):
            x = torch.randn(shape, device=device).contiguous(memory_format=layout).requires_grad_()
            plain = plain_twin(layer).to(device, memory_format=layout)
            candidates = {form: forward_backward(forward, x, args.bf16) for form, forward in (
                ("conv", plain), ("position bias", layer.position_bias_forward),
                ("concatenating", layer.concatenating_forward))}
            seconds = list(alternating_medians(candidates, args.calls, args.repeats, device).values())
            totals = [total + value for total, value in zip(totals, seconds)]
            print(row(name, *seconds))
        print(row("all layers", *totals))


def row(name: str, conv: float, position: float, concatenating: float) -> str:
    return (f"| {name} | {conv * 1e3:.3f} | {position * 1e3:.3f} | {position / conv:.3f} | "
            f"{concatenating * 1e3:.3f} | {concatenating / conv:.3f} |")


if __name__ == "__main__":
    main()
