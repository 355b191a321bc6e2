"""The `gen` command line: data, training, sampling, metrics, toy tasks, interpolation."""

from __future__ import annotations

from pathlib import Path

import click


class InputError(click.ClickException):
    """Bad user input: one line on stderr, exit code 2, nothing written."""

    exit_code = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="coordgen")
def main() -> None:
    """coordgen: GANs and VAEs with switchable CoordConv layers."""


@main.group()
def data() -> None:
    """Make and look at datasets."""


@data.command("make")
@click.argument("dataset", type=click.Choice(["squares", "shapes"]))
@click.option("--split", type=click.Choice(["all", "uniform", "quadrant"]), default="all",
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
    if out.suffix != ".npz":
        raise InputError(f"--out must end in .npz, got {out}")
    try:
        if dataset == "squares":
            made = make_squares(split, test_fraction, seed)
        else:
            made = make_shapes(count, seed)
    except ValueError as error:
        raise InputError(str(error)) from None
    made.save(out)
    test = int(made.labels["test"].sum()) if "test" in made.labels else 0
    click.echo(f"wrote {out}: {len(made)} images ({len(made) - test} train, {test} test)")


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
    images = _or_input_error(load_image_array, path)
    save_grid(out, images[:count], nrow=nrow)
    click.echo(f"wrote {out}: {min(count, len(images))} images")


@main.group()
def train() -> None:
    """Train a GAN or a VAE (same loop, flags and run layout)."""


def run_options(command):
    """Flags every model kind shares; defaults come from RunConfig."""
    from gen.configs import RunConfig

    defaults = RunConfig()
    options = [
        click.option("--data", type=click.Choice(["squares", "shapes", "lsun", "folder"]),
                     default=defaults.data, show_default=True,
                     help="squares/shapes are generated; lsun/folder read --root."),
        click.option("--root", type=click.Path(path_type=Path), default=None,
                     help="lsun: folder holding bedroom_train_lmdb; folder: image tree."),
        click.option("--split", type=click.Choice(["all", "uniform", "quadrant"]),
                     default=defaults.split, show_default=True,
                     help="squares: train on this split's train part."),
        click.option("--resolution", type=click.Choice(["32", "64", "128"]),
                     default=str(defaults.resolution), show_default=True),
        click.option("--steps", type=click.IntRange(min=1), default=None,
                     help="Training steps [default: GAN 20000 (DCGAN G) or 5000 (tiled G), VAE 6000; "
                          "on --resume: the saved total]."),
        click.option("--lr-rampdown", type=click.FloatRange(min=0, max=1), default=None,
                     help="Final share of the steps over which learning rates fall linearly towards 0 "
                          "[default: 0.3 for the tiled GAN, else 0]."),
        click.option("--batch-size", type=click.IntRange(min=2), default=defaults.batch_size,
                     show_default=True),
        click.option("--seed", type=int, default=defaults.seed, show_default=True),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
                     help="auto picks cuda when there is one [default: auto]."),
        click.option("--workers", type=click.IntRange(min=0), default=defaults.workers,
                     show_default=True, help="Decoding processes for lsun/folder."),
        click.option("--log-every", type=click.IntRange(min=1), default=defaults.log_every,
                     show_default=True),
        click.option("--image-every", type=click.IntRange(min=1), default=defaults.image_every,
                     show_default=True),
        click.option("--ckpt-every", type=click.IntRange(min=1), default=defaults.ckpt_every,
                     show_default=True),
        click.option("--eval-every", type=click.IntRange(min=1), default=defaults.eval_every,
                     show_default=True, help="Geometric metrics of samples (squares/shapes)."),
        click.option("--eval-samples", type=click.IntRange(min=1), default=defaults.eval_samples,
                     show_default=True),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Run directory [default: a new folder under runs/]."),
        click.option("--resume", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Continue the run in this directory from its latest checkpoint."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


RESUMABLE = {"steps", "device", "resume"}


def launch_training(kind: str, model_config, options: dict, tag: str, default_steps: int,
                    default_rampdown: float = 0.0) -> None:
    """Start or resume a run from parsed CLI options and print where it went; the defaults
    are the model's (steps that fit the time budget, learning-rate ramp-down)."""
    from gen import runs
    from gen.configs import RunConfig

    context = click.get_current_context()
    if options["resume"] is not None:
        changed = [name for name in context.params
                   if context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
                   and name not in RESUMABLE]
        if changed:
            flags = ", ".join("--" + name.replace("_", "-") for name in changed)
            raise InputError(f"--resume continues the saved config; cannot change {flags}")
        run_dir = options["resume"]
        click.echo(f"resuming {run_dir}")
        checkpoint = _or_input_error(runs.resume, run_dir, options["steps"], options["device"])
    else:
        run = RunConfig(**{name: options[name] for name in (
            "data", "split", "batch_size", "seed", "workers", "log_every", "image_every",
            "ckpt_every", "eval_every", "eval_samples")},
            root=None if options["root"] is None else str(options["root"]),
            resolution=int(options["resolution"]),
            steps=options["steps"] or default_steps,
            lr_rampdown=default_rampdown if options["lr_rampdown"] is None else options["lr_rampdown"],
            device=options["device"] or "auto")
        run_dir = options["out"] or runs.default_run_dir(kind, tag)
        click.echo(f"run directory: {run_dir}")
        checkpoint = _or_input_error(runs.start, kind, run, model_config, run_dir)
    click.echo(f"done: checkpoint {checkpoint}, samples {run_dir / 'samples.png'}, "
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
@click.option("--arch", type=click.Choice(["dcgan", "tiled"]), default=None,
              help="Generator: DCGAN, or the authors' tiled-latent CoordConv generator [default: tiled "
                   "when --coordconv puts CoordConv in G, else dcgan].")
@click.option("--upsample", type=click.Choice(["nearest", "transpose"]), default=None,
              help="DCGAN G upsampling: nearest x2 + 3x3 conv, or 4x4 stride-2 transposed conv.")
@click.option("--output-bias", type=float, default=None,
              help="Initial bias of G's last layer: negative starts from a black background.")
@click.option("--latent-dim", type=click.IntRange(min=1), default=None, help="[default: 64]")
@click.option("--g-width", type=click.IntRange(min=1), default=None, help="Generator base width.")
@click.option("--d-width", type=click.IntRange(min=1), default=None, help="Discriminator base width.")
@click.option("--loss", type=click.Choice(["nonsaturating", "hinge"]), default="nonsaturating",
              show_default=True)
@click.option("--latent", type=click.Choice(["normal", "uniform"]), default=None,
              help="Latent distribution.")
@click.option("--g-lr", type=float, default=None)
@click.option("--d-lr", type=float, default=None)
@click.option("--r1", type=click.FloatRange(min=0), default=None, help="R1 penalty weight (0: off).")
@click.option("--ema", type=click.FloatRange(min=0, max=1, max_open=True), default=None,
              help="EMA decay of G's weights (0: off).")
@click.option("--g-steps", type=click.IntRange(min=1), default=None, help="G steps per D step.")
@click.option("--minibatch-std/--no-minibatch-std", default=True, show_default=True,
              help="Minibatch standard-deviation feature in D.")
def train_gan(coordconv: bool, coord_in: str, coord_layers: str, arch: str, upsample, output_bias,
              latent_dim, g_width,
              d_width, loss: str, latent, g_lr, d_lr, r1, ema, g_steps, minibatch_std: bool,
              **options) -> None:
    """Train a GAN, with or without CoordConv: a DCGAN, or the authors' tiled CoordConv
    generator (the default with --coordconv); each generator has its own tuned defaults."""
    from dataclasses import replace

    from gen.gan.task import ARCH_DEFAULTS, default_config, resolve_placement

    arch, g_coords, d_coords = _or_input_error(resolve_placement, coordconv, coord_in, coord_layers, arch)
    config = default_config(arch, g_coords, d_coords)
    overrides = {"latent_dim": latent_dim, "width": g_width, "upsample": upsample,
                 "output_bias": output_bias}
    config = replace(
        config,
        generator=replace(config.generator, **{k: v for k, v in overrides.items() if v is not None}),
        discriminator=replace(config.discriminator, minibatch_std=minibatch_std,
                              **({"width": d_width} if d_width is not None else {})),
        loss=loss,
        **{k: v for k, v in {"latent": latent, "g_lr": g_lr, "d_lr": d_lr, "r1_gamma": r1,
                             "ema_beta": ema, "g_steps": g_steps}.items() if v is not None},
    )
    tag = "coordconv" if coordconv or arch == "tiled" else "conv"
    preset = ARCH_DEFAULTS[arch]
    launch_training("gan", config, options, tag, preset["steps"], preset["lr_rampdown"])


@train.command("vae")
@run_options
@click.option("--coordconv", is_flag=True, help="CoordConv in encoder and decoder (see --coord-in).")
@click.option("--coord-in", type=click.Choice(["both", "encoder", "decoder"]), default="both",
              show_default=True, help="With --coordconv: which half gets CoordConv.")
@click.option("--coord-layers", type=click.Choice(["all", "first"]), default="all", show_default=True,
              help="With --coordconv: every conv layer or the first only.")
@click.option("--decoder", type=click.Choice(["dcgan", "broadcast"]), default=None,
              help="Transposed-conv decoder, or the spatial broadcast (tiled latent + coords) one.")
@click.option("--likelihood", type=click.Choice(["bernoulli", "gaussian", "discretized"]), default=None,
              help="[default: bernoulli for squares/shapes, discretized for lsun/folder]")
@click.option("--latent-dim", type=click.IntRange(min=1), default=None)
@click.option("--width", type=click.IntRange(min=1), default=None, help="Encoder/decoder base width.")
@click.option("--beta", type=click.FloatRange(min=0), default=None, help="KL weight (beta-VAE).")
@click.option("--kl-warmup", type=click.IntRange(min=0), default=None,
              help="Steps of linear KL warm-up from 0 to beta.")
@click.option("--lr", type=float, default=None)
def train_vae(coordconv: bool, coord_in: str, coord_layers: str, decoder, likelihood, latent_dim,
              width, beta, kl_warmup, lr, **options) -> None:
    """Train a convolutional VAE, with or without CoordConv."""
    from dataclasses import replace

    from gen.vae.task import DEFAULT_STEPS, VAEConfig

    config = VAEConfig()
    if likelihood is None:
        likelihood = "bernoulli" if options["data"] in ("squares", "shapes") else "discretized"
    model = {"latent_dim": latent_dim, "width": width, "decoder": decoder}
    config = replace(
        config,
        model=replace(
            config.model,
            encoder_coords=coord_layers if coordconv and coord_in in ("both", "encoder") else "none",
            decoder_coords=coord_layers if coordconv and coord_in in ("both", "decoder") else "none",
            **{k: v for k, v in model.items() if v is not None}),
        likelihood=likelihood,
        **{k: v for k, v in {"beta": beta, "kl_warmup": kl_warmup, "lr": lr}.items() if v is not None},
    )
    launch_training("vae", config, options, "coordconv" if coordconv else "conv", DEFAULT_STEPS)


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

    if out.suffix not in (".npz", ".png"):
        raise InputError(f"--out must end in .npz or .png, got {out}")
    images = _or_input_error(sample_images, checkpoint, count, seed, device)
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
@click.option("--dataset", type=click.Choice(["squares", "shapes"]), default=None,
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
    from gen.sources import load_image_array
    from gen.training import CHECKPOINT_NAME

    if not source.exists():
        raise InputError(f"{source} does not exist")
    if json_out is not None and json_out.suffix != ".json":
        raise InputError(f"--json must end in .json, got {json_out}")
    if heatmap is not None and heatmap.suffix != ".png":
        raise InputError(f"--heatmap must end in .png, got {heatmap}")
    if source.suffix == ".pt" or (source / CHECKPOINT_NAME).is_file():
        from gen.sampling import sample_images

        images = _or_input_error(sample_images, source, count or 10_000, seed, device)
    else:
        images = _or_input_error(load_image_array, source)
        if count is not None and count > len(images):
            raise InputError(f"--n {count} is more than the {len(images)} images in {source}")
        images = images[:count]
    dataset = dataset or ("squares" if images.shape[-1] == 1 else "shapes")
    results = _or_input_error(evaluate_samples, images, dataset, seed)
    click.echo(format_table(results))
    if json_out is not None:
        save_metrics(json_out, results)
        click.echo(f"wrote {json_out}")
    if heatmap is not None:
        save_heatmap(heatmap, images, dataset)
        click.echo(f"wrote {heatmap}")


def _parse_grid(text: str) -> tuple[int, int]:
    import re

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
@click.option("--keyframes", type=click.IntRange(min=2), default=None,
              help="Random latents each path loops through [default: 4].")
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
def interpolate(checkpoint: Path, out: Path | None, mode: str, keyframes: int | None, frames_per_segment: int,
                grid_text: str | None, fps: int, scale: int, seed: int, from_images: tuple[str, str] | None,
                score: bool, paths: int, endpoints: str, json_out: Path | None, device: str) -> None:
    """Latent interpolation videos of a GAN or VAE checkpoint, and the move-vs-fade score:
    do objects move between samples, fade out and in, or teleport?"""
    from gen.interpolation import (
        dataset_images,
        encoded_keyframes,
        keyframe_path,
        random_keyframes,
        sample_path,
    )
    from gen.interpolation_score import (
        MIN_FRAMES,
        encoded_latents,
        format_scores,
        score_model,
        score_segments,
    )
    from gen.metrics import save_metrics
    from gen.runs import load_task
    from gen.training import resolve_device
    from gen.video import check_format, write_animation

    context = click.get_current_context()
    given = {name for name in context.params
             if context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}
    if out is None and not score:
        raise InputError("nothing to do: give --out FILE (.mp4, .gif or .png), --score, or both")
    if out is not None:
        _or_input_error(check_format, out)
    if not score and given & {"paths", "endpoints", "json_out"}:
        raise InputError("--paths, --endpoints and --json go with --score")
    if json_out is not None and json_out.suffix != ".json":
        raise InputError(f"--json must end in .json, got {json_out}")
    if score and frames_per_segment + 1 < MIN_FRAMES:
        raise InputError(f"--score needs --frames-per-segment of at least {MIN_FRAMES - 1}")
    if from_images is not None and given & {"keyframes", "grid_text", "paths", "endpoints"}:
        raise InputError("--from-images makes one path between its two images; "
                         "drop --keyframes, --grid, --paths and --endpoints")
    rows, columns = _parse_grid(grid_text or ("1x1" if from_images else "4x4"))
    torch_device = _or_input_error(resolve_device, device)
    task, payload = _or_input_error(load_task, checkpoint, torch_device)
    dataset = payload["config"]["run"]["data"]
    if score and dataset not in ("squares", "shapes"):
        raise InputError(f"--score needs a squares or shapes model; this one was trained on {dataset}")

    if from_images is not None:
        ends = _or_input_error(encoded_keyframes, task, list(from_images), payload["config"], torch_device)
    else:
        ends = random_keyframes(task, keyframes or 4, rows * columns, seed)
    if score and from_images is not None:
        scores = score_segments(task, ends[0], ends[1], frames_per_segment, mode, dataset, torch_device)
        described, valid_rate = "the two images' encodings", None
    elif score and endpoints == "data":
        if not hasattr(task, "encode"):
            raise InputError("--endpoints data needs a VAE checkpoint: a GAN has no encoder to map images "
                             "to latents")
        images = _or_input_error(dataset_images, payload["config"])
        latents = _or_input_error(encoded_latents, task, images, 2 * paths, seed + 1, torch_device)
        scores = score_segments(task, latents[:paths], latents[paths:], frames_per_segment, mode, dataset,
                                torch_device)
        described, valid_rate = f"encodings of random pairs of the {len(images)} {dataset} images", None
    elif score:  # before any video, so a model with too few valid samples writes nothing
        scores, valid_rate = _or_input_error(score_model, task, dataset, paths, frames_per_segment, mode,
                                             seed + 1, torch_device)
        described = f"valid samples ({valid_rate:.1%} of draws were valid)"
    if out is not None:
        path = keyframe_path(ends, frames_per_segment, mode)
        count = write_animation(out, sample_path(task, path, torch_device), columns, fps, scale)
        click.echo(f"wrote {out}: {count} frames of {rows} x {columns} paths through {len(ends)} "
                   f"{'images' if from_images else 'keyframes'} ({mode})")
    if not score:
        return
    summary = scores.summary()
    click.echo(format_scores(summary))
    click.echo(f"endpoints: {described}; {mode}, {frames_per_segment} steps per path")
    if json_out is not None:
        save_metrics(json_out, {
            "checkpoint": str(checkpoint), "kind": payload["kind"], "mode": mode,
            "frames_per_segment": frames_per_segment, "seed": seed,
            "from_images": list(from_images) if from_images else None,
            "endpoints": None if from_images else endpoints,
            "endpoint_valid_rate": valid_rate, "summary": summary, "per_path": scores.per_path()})
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
    from gen.fileio import save_json
    from gen.toy.train import METRICS, ToyConfig, train_toy
    from gen.training import resolve_device

    if split is not None and data_path is not None:
        raise InputError("--split and --data are exclusive: a --data file carries its own split")
    if json_out is not None and json_out.suffix != ".json":
        raise InputError(f"--json must end in .json, got {json_out}")
    data = None
    if data_path is not None:
        data = _or_input_error(NotSoClevr.load, data_path)
    config = ToyConfig(task=task, split=split or "uniform", coordconv=coordconv, epochs=epochs, lr=lr,
                       batch_size=batch_size, seed=seed, device=str(_or_input_error(resolve_device, device)))
    result = _or_input_error(train_toy, config, data, None if quiet else click.echo)
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


def _or_input_error(function, *args, **kwargs):
    """Call a library function, turning its ValueError on bad input into a one-line CLI error."""
    try:
        return function(*args, **kwargs)
    except ValueError as error:
        raise InputError(str(error)) from None


if __name__ == "__main__":
    main()
