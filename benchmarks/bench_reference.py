"""gen's DCGAN step against the pytorch/examples DCGAN loop, CoordConv's cost per model, and
the data path: side by side in one process, alternating, medians.

1. Throughput of gen's GAN step (DCGAN G and D at each of `--widths`, 64 by default, the
   reference's; 8 and 16 are the presets' widths; batch 64, RGB) relative to the
   reference loop of `speed_reference.py` (pytorch/examples dcgan/main.py): "same work"
   (non-saturating loss = BCE on logits, no R1, one G step; gen's nets: no BatchNorm in D,
   a fresh G forward for the G step) and gen's defaults (lazy R1, EMA, minibatch std).
2. CoordConv in every layer of that G and D (`--coordconv --arch dcgan`) against the same
   model without: the step-time ratio, for each of the layers' two forms.
3. The data path: steps/s of a small GAN fed squares from the device (as `gen train gan`
   does) and from a DataLoader over the same set.

Usage: python benchmarks/bench_reference.py [--steps 10] [--repeats 3] [--threads 2]
       [--widths 64] [--device cpu] [--bf16] [--channels-last] [--compile]
       [--parts reference,coordconv,data]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from gen.configs import RunConfig
from gen.coordconv import CoordConv2d, CoordConvTranspose2d, coordconv_form
from gen.data import make_squares
from gen.data.batches import LoaderBatches, TensorBatches
from gen.gan.config import gan_preset
from gen.gan.task import GANTask
from gen.images import to_model_range
from gen.speed import apply_fast_paths

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import alternating_medians, timing_device  # noqa: E402

from gen import speed_reference  # noqa: E402

PARTS = ("reference", "coordconv", "data")


def reference_step(device: torch.device, width: int) -> Callable[[], None]:
    """One step of the pytorch/examples loop (its nets at `width`)."""
    speed_reference.NGF = speed_reference.NDF = width
    torch.manual_seed(0)
    net_g, net_d = speed_reference.generator().to(device), speed_reference.discriminator().to(device)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loss = nn.BCELoss()
    batch = speed_reference.BATCH
    real = torch.rand(batch, 3, 64, 64, device=device) * 2 - 1
    ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)

    def step() -> None:
        net_d.zero_grad()
        loss(net_d(real), ones).backward()
        fake = net_g(torch.randn(batch, speed_reference.NZ, 1, 1, device=device))
        loss(net_d(fake.detach()), zeros).backward()
        opt_d.step()
        net_g.zero_grad()
        loss(net_d(fake), ones).backward()
        opt_g.step()

    return step


FP32 = RunConfig(steps=1, precision="fp32", channels_last=False)


def gen_step(device: torch.device, width: int, same_work: bool, coordconv: bool = False,
             fast: RunConfig = FP32, form: str | None = None) -> Callable[[], None]:
    """One `GANTask.train_step` of gen's DCGAN at `width`, batch 64, with the fast paths of
    `fast` (precision, channels_last, compile) set as `gen train` sets them; `form`
    ("position_bias" or "concatenating") makes every CoordConv layer use that form."""
    sizes = {"latent_dim": 100, "width": width}
    settings = dict(r1_gamma=0.0, g_steps=1, ema_beta=0.0) if same_work else {}
    preset = gan_preset(coordconv=coordconv, arch="dcgan", generator=sizes,
                        discriminator={"width": width, **({"minibatch_std": False} if same_work else {})},
                        **settings)
    task = GANTask(preset.model.for_data(3, 64), device)
    if form is not None:
        for network in (task.generator, task.discriminator):
            for module in network.modules():
                if isinstance(module, (CoordConv2d, CoordConvTranspose2d)):
                    module.forward = getattr(module, f"{form}_forward")
    apply_fast_paths(task, fast, device)
    real = torch.rand(64, 3, 64, 64, device=device) * 2 - 1
    if fast.channels_last:
        real = real.contiguous(memory_format=torch.channels_last)
    counter = iter(range(10**9))
    return lambda: task.train_step(real, next(counter))


class Images(Dataset):
    """uint8 images as a file source gives them: (float image in [-1, 1], 0 records skipped)."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return to_model_range(self.images[index]), 0


def data_path_steps(device: torch.device) -> dict[str, Callable[[], None]]:
    """A small GAN (width 16, batch 64) fed squares from the device and through a DataLoader."""
    images = make_squares().images
    preset = gan_preset(arch="dcgan", generator={"width": 16}, discriminator={"width": 16})
    task = GANTask(preset.model.for_data(1, 64), device)
    sources = {"squares on the device (TensorBatches)": TensorBatches(images.to(device), 64, 0),
               "squares through a DataLoader (2 workers)": LoaderBatches(Images(images), 64, 0, 2, device)}
    counter = iter(range(10**9))
    return {name: (lambda batches=batches: task.train_step(next(batches), next(counter)))
            for name, batches in sources.items()}


def table(title: str, seconds: dict[str, float], base: str, throughput: bool) -> None:
    """Seconds per step and each row's throughput (or time) relative to the `base` row."""
    print(f"\n| {title} | s / step | {'throughput' if throughput else 'time'} x {base} |\n|---|---:|---:|")
    for name, value in seconds.items():
        ratio = seconds[base] / value if throughput else value / seconds[base]
        print(f"| {name} | {value:.4f} | {ratio:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--widths", default="64",
                        help="Comma-separated model widths: a reference and a coordconv table for each.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="gen's steps under bf16 autocast.")
    parser.add_argument("--channels-last", action="store_true", help="gen's networks in NHWC layout.")
    parser.add_argument("--compile", action="store_true", help="torch.compile gen's networks.")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"Comma-separated tables to measure, from {', '.join(PARTS)}.")
    args = parser.parse_args()
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    if not parts:
        parser.error(f"--parts names no table; choose from {', '.join(PARTS)}")
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    try:
        widths = [int(width) for width in args.widths.split(",")]
    except ValueError:
        parser.error(f"--widths takes comma-separated integers, got {args.widths!r}")
    device = timing_device(args.device, args.threads)
    fast = RunConfig(steps=1, precision="bf16" if args.bf16 else "fp32", channels_last=args.channels_last,
                     compile=args.compile)
    print(f"{args.repeats} x {args.steps} steps, widths {args.widths}, batch 64, {args.threads} threads, "
          f"{device}; gen's steps: {fast.precision}, channels_last {fast.channels_last}, "
          f"compile {fast.compile}")
    if "coordconv" in parts:
        print(f"gen's CoordConv layers on {device.type}: the {coordconv_form(device)} form")
    for width in widths:
        if "reference" in parts:
            reference = "pytorch/examples dcgan loop"
            steps = {reference: reference_step(device, width),
                     "gen, same work": gen_step(device, width, True, fast=fast),
                     "gen, defaults (lazy R1, EMA, minibatch std)": gen_step(device, width, False, fast=fast)}
            seconds = alternating_medians(steps, args.steps, args.repeats, device)
            table(f"DCGAN-64 step, width {width}", seconds, reference, throughput=True)
        if "coordconv" in parts:
            conv = "gen DCGAN, conv"
            steps = {conv: gen_step(device, width, False, fast=fast),
                     **{f"CoordConv in every layer, {form.replace('_', ' ')}":
                        gen_step(device, width, False, True, fast, form)
                        for form in ("position_bias", "concatenating")}}
            seconds = alternating_medians(steps, args.steps, args.repeats, device)
            table(f"CoordConv per model, width {width}", seconds, conv, throughput=False)
    if "data" in parts:
        seconds = alternating_medians(data_path_steps(device), args.steps, args.repeats, device)
        table("data path (width 16)", seconds, next(iter(seconds)), throughput=True)


if __name__ == "__main__":
    main()
