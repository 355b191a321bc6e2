"""The `gen` command line: data, training, sampling, metrics, toy tasks, interpolation.

Each command parses and checks its flags and calls the library; heavy modules (torch and
what needs it) are imported inside the commands, so `gen --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import click

from gen.configs import (
    DATA_SOURCES,
    GENERATED_SOURCES,
    PRECISIONS,
    RESUMABLE_FIELDS,
    SPLITS,
    Preset,
    RunConfig,
    given,
)
from gen.errors import InputError, RunStopped
from gen.gan.config import (
    ARCHS,
    GAN_PRESETS,
    LATENT_DISTRIBUTIONS,
    LOSSES,
    gan_preset,
    preset_label,
)
from gen.vae.config import DECODERS, LIKELIHOODS, VAE_PRESET, default_decoder, default_likelihood, vae_preset


class BadInput(click.ClickException):
    """How the command line shows an InputError: one line on stderr, exit code 2."""

    exit_code = 2


class Commands(click.Group):
    """The command group: an InputError raised anywhere below becomes one line and exit 2;
    every other exception is a bug and keeps its traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InputError as error:
            raise quiet_off_rank_0(BadInput(str(error))) from None
        except RunStopped as error:
            raise quiet_off_rank_0(click.ClickException(str(error))) from None


def require_suffix(path: Path | None, flag: str, *suffixes: str) -> None:
    """InputError unless an output path (when given) ends in one of `suffixes`."""
    if path is not None and path.suffix not in suffixes:
        raise InputError(f"{flag} must end in {' or '.join(suffixes)}, got {path}")


def quiet_off_rank_0(error: click.ClickException) -> Exception:
    """Under torchrun every rank meets the same error: rank 0 says it, the others only exit."""
    if int(os.environ.get("RANK", "0")) != 0:
        return SystemExit(error.exit_code)
    return error


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="coordgen")
def main() -> None:
    """coordgen: GANs and VAEs with switchable CoordConv layers."""


@main.group()
def data() -> None:
    """Make and look at datasets."""


@data.command("make")
@click.argument("dataset", type=click.Choice(GENERATED_SOURCES))
@click.option("--split", type=click.Choice(SPLITS), default="all",
              show_default=True, help="squares only: which centres are marked test.")
@click.option("--test-fraction", type=float, default=0.2, show_default=True,
              help="squares uniform split: share of centres held out.")
@click.option("--n", "count", type=int, default=50_000, show_default=True,
              help="shapes only: how many images.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output .npz (default data/<dataset>[_<split>].npz).")
def data_make(dataset: str, split: str, test_fraction: float, count: int, seed: int,
              out: Path | None) -> None:
    """Generate a Not-so-Clevr set and write it as .npz (images uint8 N x H x W x C)."""
    from gen.data import make_shapes, make_squares

    if out is None:
        suffix = f"_{split}" if dataset == "squares" and split != "all" else ""
        out = Path("data") / f"{dataset}{suffix}.npz"
    require_suffix(out, "--out", ".npz")
    made = make_squares(split, test_fraction, seed) if dataset == "squares" else make_shapes(count, seed)
    made.save(out)
    test = int(made.labels["test"].sum()) if "test" in made.labels else 0
    click.echo(f"wrote {out}: {len(made)} images ({len(made) - test} train, {test} test)")


@data.command("prepare")
@click.argument("source", type=click.Choice(["lsun", "folder"]))
@click.option("--root", type=click.Path(path_type=Path), required=True,
              help="lsun: folder holding bedroom_train_lmdb; folder: image tree.")
@click.option("--resolution", type=click.Choice(["64", "128"]), default="64", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to create (written as OUT.partial until complete).")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Decoding processes.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N records.")
def data_prepare(source: str, root: Path, resolution: str, out: Path, workers: int,
                 limit: int | None) -> None:
    """Decode LSUN or an image folder once into uint8 pixels on disk (resized and
    centre-cropped as training does; unreadable records skipped and counted), for
    `gen train ... --data prepared --root OUT`. An interrupted run continues when rerun."""
    from gen.data.prepare import prepare

    manifest = prepare(source, root, int(resolution), out, workers, limit)
    click.echo(f"wrote {out}: {manifest['count']} images of {manifest['resolution']} px, "
               f"{manifest['skipped_total']} unreadable records skipped")


@data.command("show")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output PNG grid.")
@click.option("--n", "count", type=int, default=64, show_default=True)
@click.option("--nrow", type=int, default=8, show_default=True)
def data_show(path: Path, out: Path, count: int, nrow: int) -> None:
    """Write a PNG grid of the first N images of an .npz (key `images`)."""
    from gen.images import save_grid
    from gen.sources import load_image_array

    if count < 1 or nrow < 1:
        raise InputError("--n and --nrow must be positive")
    images = load_image_array(path)
    save_grid(out, images[:count], nrow=nrow)
    click.echo(f"wrote {out}: {min(count, len(images))} images")


@main.group()
def train() -> None:
    """Train a GAN or a VAE (same loop, flags and run layout)."""


def _run_default(name: str) -> object:
    """RunConfig's default of a field: the flag's default is the dataclass's."""
    return next(field.default for field in dataclasses.fields(RunConfig) if field.name == name)


def _schedules_help(field: str) -> str:
    """Each preset's value of a schedule field, for help text."""
    gan = " or ".join(f"{getattr(preset.schedule, field)} ({preset_label(name)})"
                      for name, preset in GAN_PRESETS.items())
    return f"GAN {gan}, VAE {getattr(VAE_PRESET.schedule, field)}"


def _gan_help(read) -> str:
    """A GAN setting's default per preset (generator, and data set where it has its own), for
    help text."""
    values = {name: read(preset.model) for name, preset in GAN_PRESETS.items()}
    if len(set(values.values())) == 1:
        return f"[default: {next(iter(values.values()))}]"
    return "[default: " + ", ".join(f"{value} ({preset_label(name)})" for name, value in values.items()) + "]"


def run_options(command):
    """Flags every model family shares; defaults come from RunConfig and the presets."""
    options = [
        click.option("--data", type=click.Choice(DATA_SOURCES),
                     default=_run_default("data"), show_default=True,
                     help="squares/shapes are generated; lsun/folder/prepared read --root."),
        click.option("--root", type=click.Path(path_type=Path), default=None,
                     help="lsun: folder holding bedroom_train_lmdb; folder: image tree; prepared: "
                          "a folder made by gen data prepare."),
        click.option("--split", type=click.Choice(SPLITS),
                     default=_run_default("split"), show_default=True,
                     help="squares: train on this split's train part."),
        click.option("--resolution", type=click.Choice(["32", "64", "128"]),
                     default=str(_run_default("resolution")), show_default=True),
        click.option("--steps", type=click.IntRange(min=1), default=None,
                     help=f"Training steps [default: {_schedules_help('steps')}; "
                          "on --resume: the saved total]."),
        click.option("--lr-rampdown", type=click.FloatRange(min=0, max=1), default=None,
                     help="Final share of the steps over which learning rates fall linearly towards 0 "
                          f"[default: {_schedules_help('lr_rampdown')}]."),
        click.option("--batch-size", type=click.IntRange(min=2), default=_run_default("batch_size"),
                     show_default=True),
        click.option("--seed", type=int, default=_run_default("seed"), show_default=True),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
                     help="auto picks cuda when there is one [default: auto]."),
        click.option("--workers", type=click.IntRange(min=0), default=_run_default("workers"),
                     show_default=True, help="Decoding processes for lsun/folder."),
        click.option("--precision", type=click.Choice(PRECISIONS), default=None,
                     help="Of forward passes: bf16 autocast keeps fp32 weights [default: auto, bf16 on "
                          "GPUs that compute it natively, else fp32; on --resume: the run's]."),
        click.option("--channels-last/--no-channels-last", default=None,
                     help="NHWC memory layout [default: on GPUs]."),
        click.option("--compile/--no-compile", default=None,
                     help="torch.compile the networks a step runs (G and D; not D with R1, whose double "
                          "backward torch.compile cannot run) [default: off; on --resume: the run's]."),
        click.option("--sync-bn/--no-sync-bn", default=None,
                     help="Under torchrun: BatchNorm statistics of the global batch rather than of "
                          "each rank's slice (the same model at any number of processes)."),
        click.option("--log-every", type=click.IntRange(min=1), default=_run_default("log_every"),
                     show_default=True),
        click.option("--image-every", type=click.IntRange(min=1), default=_run_default("image_every"),
                     show_default=True),
        click.option("--ckpt-every", type=click.IntRange(min=1), default=_run_default("ckpt_every"),
                     show_default=True),
        click.option("--keep", type=click.IntRange(min=1), default=None,
                     help="Step snapshots kept besides checkpoint.pt, the newest "
                          f"[default: {_run_default('keep')}; on --resume: the run's]."),
        click.option("--eval-every", type=click.IntRange(min=1), default=_run_default("eval_every"),
                     show_default=True, help="Steps between evaluations: geometric metrics of samples "
                                             "(squares/shapes), FID and its companions (natural images)."),
        click.option("--eval-samples", type=click.IntRange(min=1), default=_run_default("eval_samples"),
                     show_default=True, help="Samples the geometric metrics measure (squares/shapes)."),
        click.option("--fid-samples", type=click.IntRange(min=0), default=None,
                     help="Natural images: samples and real images each FID evaluation measures (0: no "
                          "FID) [default: 5000 on GPUs, 1000 on the CPU]."),
        click.option("--inception-weights", type=click.Path(dir_okay=False, resolve_path=True), default=None,
                     help="torch-fidelity's Inception-v3 weights file for FID, for offline machines "
                          "[default: $GEN_INCEPTION_WEIGHTS, else downloaded once to torch hub's cache]."),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Run directory [default: a new folder under runs/]."),
        click.option("--resume", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Continue the run in this directory from its latest checkpoint."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


RESUMABLE = {*RESUMABLE_FIELDS, "resume"}
RUN_FIELDS = {field.name for field in dataclasses.fields(RunConfig)}


def launch_training(kind: str, preset: Preset, options: dict, tag: str) -> None:
    """Start a run of the preset, or resume one, from parsed options; print where it went."""
    from gen import runs
    from gen.distributed import leave_world

    context = click.get_current_context()
    if options["resume"] is not None:
        given_flags = [name for name in context.params
                       if context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
        changed = [name for name in given_flags if name not in RESUMABLE]
        if changed:
            flags = ", ".join("--" + name.replace("_", "-") for name in changed)
            raise InputError(f"--resume continues the saved config; cannot change {flags}")
        run_dir = options["resume"]
        changes = {name: options[name] for name in given_flags if name in RESUMABLE_FIELDS}
        prepared = runs.prepare_resume(run_dir, kind, **changes)
        if prepared.task.world.is_main:
            for path, why in prepared.passed_over:
                click.echo(f"passed over {why}; set aside as {path.name}.unreadable", err=True)
            click.echo(f"resuming {run_dir} from step {prepared.start_step}")
    else:
        settings = given({name: value for name, value in options.items() if name in RUN_FIELDS})
        settings.update(root=None if options["root"] is None else str(options["root"]),
                        resolution=int(options["resolution"]))
        run = preset.run_config(**settings)
        run_dir = options["out"] or runs.default_run_dir(kind, tag)
        prepared = runs.prepare_start(run, preset.model, run_dir)
        if prepared.task.world.is_main:
            click.echo(f"run directory: {run_dir}")
    if prepared.task.world.is_main:
        for warning in prepared.warnings:
            click.echo(f"warning: {warning}", err=True)
    outcome = prepared.train()
    # Only after a clean end: a group torn down while other ranks still wait in a collective
    # can block, and after a failure the process exits anyway.
    leave_world()
    if not prepared.task.world.is_main:
        return
    if outcome.stopped_by is not None:
        size = prepared.task.world.size
        launcher = f"torchrun --nproc_per_node {size} -m gen" if size > 1 else "gen"
        click.echo(f"stopped by {outcome.stopped_by} after step {outcome.step}: saved {outcome.checkpoint}; "
                   f"continue with: {launcher} train {kind} --resume {run_dir}")
        return
    click.echo(f"done: checkpoint {outcome.checkpoint}, samples {run_dir / 'samples.png'}, "
               f"TensorBoard logs {run_dir / 'tb'}")


@train.command("gan")
@run_options
@click.option("--coordconv", is_flag=True,
              help="CoordConv in G and D: the authors' tiled CoordConv G (unless --arch dcgan) and "
                   "CoordConv layers in D (see --coord-in/--coord-layers).")
@click.option("--coord-in", type=click.Choice(["both", "g", "d"]), default="both", show_default=True,
              help="With --coordconv: which network gets CoordConv.")
@click.option("--coord-layers", type=click.Choice(["all", "first"]), default="all", show_default=True,
              help="With --coordconv: every conv layer or the first only.")
@click.option("--arch", type=click.Choice(ARCHS), default=None,
              help="Generator: DCGAN, or the authors' tiled-latent CoordConv generator [default: tiled "
                   "when --coordconv puts CoordConv in G, else dcgan]. Each has its own preset.")
@click.option("--upsample", type=click.Choice(["nearest", "transpose"]), default=None,
              help="DCGAN G upsampling: nearest x2 + 3x3 conv, or 4x4 stride-2 transposed conv "
                   + _gan_help(lambda m: m.generator.upsample) + ".")
@click.option("--output-bias", type=float, default=None,
              help="Initial bias of G's last layer: negative starts from a black background "
                   + _gan_help(lambda m: m.generator.output_bias) + ".")
@click.option("--latent-dim", type=click.IntRange(min=1), default=None,
              help=_gan_help(lambda m: m.generator.latent_dim))
@click.option("--subpixel-jitter", type=click.FloatRange(min=0), default=None,
              help="Tiled G: training draws each fake up to this many pixels off the pixel grid "
                   "on each axis, so D judges sizes at every sub-pixel position (0: off) "
                   + _gan_help(lambda m: m.generator.subpixel_jitter) + ".")
@click.option("--g-width", type=click.IntRange(min=1), default=None,
              help="Generator base width " + _gan_help(lambda m: m.generator.width) + ".")
@click.option("--d-width", type=click.IntRange(min=1), default=None,
              help="Discriminator base width " + _gan_help(lambda m: m.discriminator.width) + ".")
@click.option("--d-kernel", type=click.IntRange(min=2), default=None,
              help="Discriminator conv kernel size " + _gan_help(lambda m: m.discriminator.kernel_size) + ".")
@click.option("--loss", type=click.Choice(LOSSES), default=None,
              help=_gan_help(lambda m: m.loss))
@click.option("--latent", type=click.Choice(LATENT_DISTRIBUTIONS), default=None,
              help="Latent distribution " + _gan_help(lambda m: m.latent) + ".")
@click.option("--g-lr", type=float, default=None, help=_gan_help(lambda m: m.g_lr))
@click.option("--d-lr", type=float, default=None, help=_gan_help(lambda m: m.d_lr))
@click.option("--r1", type=click.FloatRange(min=0), default=None,
              help="R1 penalty weight (0: off) " + _gan_help(lambda m: m.r1_gamma) + ".")
@click.option("--ema", type=click.FloatRange(min=0, max=1, max_open=True), default=None,
              help="EMA decay of G's weights (0: off) " + _gan_help(lambda m: m.ema_beta) + ".")
@click.option("--ema-rampup", type=click.FloatRange(min=0, min_open=True), default=None,
              help="EMA horizon in steps: this times (step + 10), until --ema caps it "
                   + _gan_help(lambda m: round(m.ema_rampup, 3)) + ".")
@click.option("--g-steps", type=click.IntRange(min=1), default=None,
              help="G steps per D step " + _gan_help(lambda m: m.g_steps) + ".")
@click.option("--minibatch-std/--no-minibatch-std", default=None,
              help="Minibatch standard-deviation feature in D "
                   + _gan_help(lambda m: m.discriminator.minibatch_std) + ".")
def train_gan(coordconv: bool, coord_in: str, coord_layers: str, arch: str | None, upsample, output_bias,
              latent_dim, subpixel_jitter, g_width, d_width, d_kernel, loss, latent, g_lr, d_lr, r1, ema,
              ema_rampup, g_steps, minibatch_std, **options) -> None:
    """Train a GAN, with or without CoordConv: a DCGAN, or the authors' tiled CoordConv
    generator (the default with --coordconv); each generator has its own tuned preset."""
    preset = gan_preset(
        coordconv, coord_in, coord_layers, arch,
        generator={"latent_dim": latent_dim, "width": g_width, "upsample": upsample,
                   "output_bias": output_bias, "subpixel_jitter": subpixel_jitter},
        discriminator={"width": d_width, "kernel_size": d_kernel, "minibatch_std": minibatch_std},
        loss=loss, latent=latent, g_lr=g_lr, d_lr=d_lr, r1_gamma=r1, ema_beta=ema,
        ema_rampup=ema_rampup, g_steps=g_steps)
    tiled = preset.model.generator.arch == "tiled"
    launch_training("gan", preset, options, "coordconv" if coordconv or tiled else "conv")


@train.command("vae")
@run_options
@click.option("--coordconv", is_flag=True, help="CoordConv in encoder and decoder (see --coord-in).")
@click.option("--coord-in", type=click.Choice(["both", "encoder", "decoder"]), default="both",
              show_default=True, help="With --coordconv: which half gets CoordConv.")
@click.option("--coord-layers", type=click.Choice(["all", "first"]), default="all", show_default=True,
              help="With --coordconv: every conv layer or the first only.")
@click.option("--decoder", type=click.Choice(DECODERS), default=None,
              help="Transposed-conv decoder, or the spatial broadcast (tiled latent + coords) one "
                   f"[default: {default_decoder(True)} with CoordConv in the decoder, else "
                   f"{default_decoder(False)}].")
@click.option("--likelihood", type=click.Choice(LIKELIHOODS), default=None,
              help="[default: " + ", ".join(f"{default_likelihood(data)} for {data}"
                                            for data in DATA_SOURCES) + "]")
@click.option("--latent-dim", type=click.IntRange(min=1), default=None,
              help=f"[default: {VAE_PRESET.model.model.latent_dim}]")
@click.option("--width", type=click.IntRange(min=1), default=None,
              help=f"Encoder/decoder base width [default: {VAE_PRESET.model.model.width}].")
@click.option("--beta", type=click.FloatRange(min=0), default=None,
              help=f"KL weight (beta-VAE) [default: {VAE_PRESET.model.beta}].")
@click.option("--kl-warmup", type=click.IntRange(min=0), default=None,
              help=f"Steps of linear KL warm-up from 0 to beta [default: {VAE_PRESET.model.kl_warmup}].")
@click.option("--lr", type=float, default=None, help=f"[default: {VAE_PRESET.model.lr}]")
def train_vae(coordconv: bool, coord_in: str, coord_layers: str, decoder, likelihood, latent_dim,
              width, beta, kl_warmup, lr, **options) -> None:
    """Train a convolutional VAE, with or without CoordConv."""
    preset = vae_preset(coordconv, coord_in, coord_layers, options["data"], likelihood,
                        model={"latent_dim": latent_dim, "width": width, "decoder": decoder},
                        beta=beta, kl_warmup=kl_warmup, lr=lr)
    launch_training("vae", preset, options, "coordconv" if coordconv else "conv")


@main.command("sample")
@click.argument("checkpoint", type=click.Path(exists=True, path_type=Path))
@click.option("--n", "count", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output .npz (key images, uint8 N x H x W x C) or .png grid.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--nrow", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
def sample(checkpoint: Path, count: int, out: Path, seed: int, nrow: int, device: str) -> None:
    """Draw N seeded samples from a GAN or VAE checkpoint (or run directory)."""
    from gen.fileio import save_npz
    from gen.images import save_grid
    from gen.sampling import sample_images

    require_suffix(out, "--out", ".npz", ".png")
    images = sample_images(checkpoint, count, seed, device)
    if out.suffix == ".npz":
        save_npz(out, images=images)
    else:
        save_grid(out, images, nrow=nrow)
    click.echo(f"wrote {out}: {len(images)} samples")


@main.group()
def metrics() -> None:
    """Measure generated samples."""


@metrics.command("coverage")
@click.argument("source", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--dataset", type=click.Choice(GENERATED_SOURCES), default=None,
              help="Definition to measure against [default: squares for 1-channel images, shapes for RGB].")
@click.option("--n", "count", type=click.IntRange(min=1), default=None,
              help="First N images of a file [default: all], or N samples of a checkpoint [default: 10000].")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the real reference sample and of checkpoint sampling.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every number to this .json.")
@click.option("--heatmap", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the mean-image heat map, generated beside real, to this .png.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Checkpoints only: where to sample.")
def metrics_coverage(source: Path, dataset: str | None, count: int | None, seed: int, json_out: Path | None,
                     heatmap: Path | None, device: str) -> None:
    """Where generated objects land: validity, position coverage, divergences, W1, quadrants,
    density/coverage. INPUT: .npz (key images), .npy, folder of PNGs, or a checkpoint (.pt or
    run directory)."""
    from gen.metrics import evaluate_samples, format_table, save_heatmap, save_metrics
    from gen.sampling import load_samples

    if not source.exists():
        raise InputError(f"{source} does not exist")
    require_suffix(json_out, "--json", ".json")
    require_suffix(heatmap, "--heatmap", ".png")
    images = load_samples(source, count, seed, device)
    dataset = dataset or ("squares" if images.shape[-1] == 1 else "shapes")
    results = evaluate_samples(images, dataset, seed)
    click.echo(format_table(results))
    if json_out is not None:
        save_metrics(json_out, results)
        click.echo(f"wrote {json_out}")
    if heatmap is not None:
        save_heatmap(heatmap, images, dataset)
        click.echo(f"wrote {heatmap}")


@metrics.command("fid")
@click.argument("source", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--ref", "reference", type=click.Path(path_type=Path), required=True,
              help="Reference images: a prepared folder, an LSUN lmdb, an image folder, an .npz or .npy.")
@click.option("--n", "count", type=click.IntRange(min=1), default=None,
              help="First N images of a file [default: all], or N samples of a checkpoint [default: 10000].")
@click.option("--n-ref", "reference_count", type=click.IntRange(min=1), default=None,
              help="Seeded random subset of the reference [default: as many as generated images; "
                   "all if fewer].")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of checkpoint sampling, of the reference subset and of KID's subsets.")
@click.option("--inception-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="torch-fidelity's Inception-v3 weights file, for offline machines [default: "
                   "$GEN_INCEPTION_WEIGHTS, else downloaded once to torch hub's cache].")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every number to this .json.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
def metrics_fid(source: Path, reference: Path, count: int | None, reference_count: int | None, seed: int,
                inception_weights: Path | None, json_out: Path | None, device: str) -> None:
    """Quality of natural-image samples against real images: FID, KID, precision/recall and
    density/coverage on Inception-v3 features. INPUT: a checkpoint (.pt or run directory), an
    .npz (key images), .npy or a folder of images. Reference features are cached."""
    from gen.data.image_sets import open_image_set
    from gen.devices import resolve_device
    from gen.metrics import save_metrics
    from gen.metrics.fidelity import Inception, format_scores, measure
    from gen.sampling import load_samples

    require_suffix(json_out, "--json", ".json")
    images = load_samples(source, count, seed, device)
    if images.shape[1] != images.shape[2]:
        raise InputError(f"{source}: images are {images.shape[1]} x {images.shape[2]}; "
                         "expected square images")
    reference_set = open_image_set(reference, images.shape[1])
    inception = Inception(inception_weights, resolve_device(device))
    scores = measure(images, reference_set, inception, reference_count or len(images), seed)
    click.echo(format_scores(scores))
    if json_out is not None:
        save_metrics(json_out, {**scores, "generated": str(source), "reference": reference_set.description,
                                "seed": seed})
        click.echo(f"wrote {json_out}")


def _parse_grid(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise InputError(f"--grid must be ROWSxCOLUMNS with both at least 1, e.g. 4x4; got {text!r}")
    return int(match[1]), int(match[2])


@main.command("interpolate")
@click.argument("checkpoint", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Video .mp4 or .gif (grid of looping paths), or .png (one row of frames per path).")
@click.option("--mode", type=click.Choice(["slerp", "lerp", "normlerp"]), default="slerp", show_default=True,
              help="normlerp: the authors' lerp with the norm interpolated linearly.")
@click.option("--keyframes", type=click.IntRange(min=2), default=4, show_default=True,
              help="Random latents each path loops through.")
@click.option("--frames-per-segment", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--grid", "grid_text", default=None, help="ROWSxCOLUMNS independent paths [default: 4x4].")
@click.option("--fps", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--scale", type=click.IntRange(min=1), default=2, show_default=True,
              help="Nearest-neighbour enlargement of each image.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--from-images", "from_images", nargs=2, default=None, metavar="A B",
              help="VAE only: loop between the encodings of two images, each an image file, "
                   "FILE.npz:INDEX, FILE.npy:INDEX, or an index into the model's squares/shapes set.")
@click.option("--score", is_flag=True, help="Print the move-vs-fade score of the paths.")
@click.option("--paths", type=click.IntRange(min=1), default=256, show_default=True,
              help="With --score: random paths to score.")
@click.option("--endpoints", type=click.Choice(["samples", "data"]), default="samples", show_default=True,
              help="With --score: paths between valid samples, or (VAE, squares/shapes) between the "
                   "encodings of random pairs of the model's data set images.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --score: write every number to this .json.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
def interpolate(checkpoint: Path, out: Path | None, mode: str, keyframes: int, frames_per_segment: int,
                grid_text: str | None, fps: int, scale: int, seed: int, from_images: tuple[str, str] | None,
                score: bool, paths: int, endpoints: str, json_out: Path | None, device: str) -> None:
    """Latent interpolation videos of a GAN or VAE checkpoint, and the move-vs-fade score:
    do objects move between samples, fade out and in, or teleport?"""
    from gen.interpolation.render import check_request, interpolate_checkpoint
    from gen.interpolation.score import format_scores
    from gen.metrics import save_metrics

    check_request(out, score, mode, frames_per_segment, endpoints)
    context = click.get_current_context()
    given = {name for name in context.params
             if context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}
    if not score and given & {"paths", "endpoints", "json_out"}:
        raise InputError("--paths, --endpoints and --json go with --score")
    require_suffix(json_out, "--json", ".json")
    if from_images is not None and given & {"keyframes", "grid_text", "paths", "endpoints"}:
        raise InputError("--from-images makes one path between its two images; "
                         "drop --keyframes, --grid, --paths and --endpoints")
    grid = _parse_grid(grid_text or ("1x1" if from_images else "4x4"))
    result = interpolate_checkpoint(
        checkpoint, out, score, mode=mode, keyframes=keyframes, frames_per_segment=frames_per_segment,
        grid=grid, fps=fps, scale=scale, seed=seed, from_images=from_images, paths=paths,
        endpoints=endpoints, device=device)
    if out is not None:
        through = f"{len(from_images)} images" if from_images else f"{keyframes} keyframes"
        click.echo(f"wrote {out}: {result.frames} frames of {grid[0]} x {grid[1]} paths through {through} "
                   f"({mode})")
    if result.scores is None:
        return
    click.echo(format_scores(result.scores.summary()))
    click.echo(f"endpoints: {result.endpoints}; {mode}, {frames_per_segment} steps per path")
    if json_out is not None:
        save_metrics(json_out, result.record)
        click.echo(f"wrote {json_out}")


@main.command("toy")
@click.argument("task", type=click.Choice(["classify", "render", "regress"]))
@click.option("--coordconv", is_flag=True, help="The paper's CoordConv model instead of the conv baseline.")
@click.option("--split", type=click.Choice(["uniform", "quadrant"]), default=None,
              help="Which centres are held out [default: uniform].")
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Train on a squares .npz from `gen data make squares` instead of --split.")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="[default: tuned per task and model, see README]")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Adam learning rate, cosine-decayed to 0 [default: tuned per task and model].")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the config and results to this .json.")
@click.option("--quiet", is_flag=True, help="Print the result line only.")
def toy(task: str, coordconv: bool, split: str | None, data_path: Path | None, epochs: int | None,
        lr: float | None, batch_size: int, seed: int, device: str, json_out: Path | None,
        quiet: bool) -> None:
    """The paper's supervised toy tasks on the squares set, conv vs CoordConv: CLASSIFY
    (x, y) -> one-hot pixel, RENDER (x, y) -> square image, REGRESS one-hot image -> (x, y).
    Prints train and test accuracy / IOU / pixel error, parameter count and wall time."""
    from gen.data import NotSoClevr
    from gen.devices import resolve_device
    from gen.fileio import save_json
    from gen.toy.train import METRICS, ToyConfig, train_toy

    if split is not None and data_path is not None:
        raise InputError("--split and --data are exclusive: a --data file carries its own split")
    require_suffix(json_out, "--json", ".json")
    data = None if data_path is None else NotSoClevr.load(data_path)
    config = ToyConfig(task=task, split=split or "uniform", coordconv=coordconv, epochs=epochs, lr=lr,
                       batch_size=batch_size, seed=seed, device=str(resolve_device(device)))
    result = train_toy(config, data, None if quiet else click.echo)
    record = result.to_dict()
    record["data"] = None if data_path is None else str(data_path)
    metric = METRICS[task]
    test = "none (no test rows)" if result.test is None else f"{result.test:.4f}"
    click.echo(f"{task} {record['split']} {'coordconv' if coordconv else 'conv'} ({result.model}, "
               f"{result.params} params): train {metric} {result.train:.4f}, test {metric} {test}, "
               f"{result.seconds:.1f}s")
    if json_out is not None:
        save_json(json_out, record)
        click.echo(f"wrote {json_out}")


@main.group()
def experiment() -> None:
    """Named, controlled comparisons: run them over seeds into result files, render the docs."""


@experiment.command("list")
def experiment_list() -> None:
    """The experiments, with the factor each varies."""
    from gen.experiments import load_all

    for item in load_all():
        click.echo(f"{item.name}: {item.title} ({len(item.rows)} rows x {len(item.seeds)} seeds; "
                   f"varies {item.factor})")


@experiment.command("run")
@click.argument("name")
@click.option("--seeds", default=None, help="Comma-separated seeds [default: the experiment's].")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs at once, each a process of its own (on a GPU all on the one device). On the "
                   "CPU more than 1 shares the cores, so wall times stop being each run's own.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Intra-op threads per run [default: the CPU's cores / --jobs; 1 on a GPU].")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Replace every training row's steps (a smoke run: results go under runs/experiments/, "
                   "never into results/).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the result files [default: results/NAME].")
def experiment_run(name: str, seeds: str | None, device: str, jobs: int, threads: int | None,
                   steps: int | None, out: Path | None) -> None:
    """Run every row of experiment NAME at every seed, skipping runs whose result file exists."""
    from gen.experiments import load, parse_seeds
    from gen.experiments.runner import Plan, default_threads, run

    item = load(name)
    chosen = item.seeds if seeds is None else parse_seeds(seeds)
    if steps is not None and any(row.kind == "toy" for row in item.rows):
        raise InputError(f"--steps replaces training steps; {name}'s toy rows train for epochs")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device cuda: no CUDA device is visible")
    plan = Plan(item, chosen, device, jobs, threads or default_threads(device, jobs), steps, out)
    failures = run(plan, click.echo)
    if failures:
        raise click.ClickException(f"{len(failures)} run(s) failed (above); rerun to retry them")


@experiment.command("report")
@click.option("--check", "check_only", is_flag=True,
              help="Write nothing; exit 1 when a committed page differs from its rendering.")
def experiment_report(check_only: bool) -> None:
    """Render docs/results/NAME.md for every experiment, and the README's results table, from
    the result files under results/ (run from the checkout's root)."""
    from gen.experiments.report import stale, write

    if check_only:
        differing = stale()
        if differing:
            click.echo("out of date (run gen experiment report): " + ", ".join(map(str, differing)), err=True)
            raise SystemExit(1)
        click.echo("every results page matches its rendering")
        return
    changed = write()
    click.echo("wrote " + ", ".join(map(str, changed)) if changed else "every results page was up to date")
