"""The `gen` command line: data, training, sampling, metrics, toy tasks, interpolation.

Each command parses and checks its flags and calls the library; heavy modules (torch and
what needs it) are imported inside the commands, so `gen --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import click

from gen.configs import GENERATED_SOURCES, RESUMABLE_FIELDS, SPLITS, Preset, RunConfig, Schedule
from gen.errors import InputError, RunStopped
from gen.gan.config import GAN_PRESETS, GANConfig, gan_preset, preset_label
from gen.options import GroupedCommand, add_options, collect, field_options, grouped
from gen.vae.config import VAE_PRESET, VAEConfig, vae_preset


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


def _schedule_help(field: str) -> str:
    """Each preset's value of a schedule field, for help text."""
    gan = ", ".join(f"{getattr(preset.schedule, field)} ({preset_label(name)})"
                    for name, preset in GAN_PRESETS.items())
    return f"GAN {gan}; VAE {getattr(VAE_PRESET.schedule, field)}"


def _read(config: object, path: tuple[str, ...]) -> object:
    for key in path:
        config = getattr(config, key)
    return config


def _run_default(path: tuple[str, ...], field: dataclasses.Field) -> str:
    if path[-1] in ("steps", "lr_rampdown"):
        return _schedule_help(path[-1])
    return str(field.default)


def _gan_default(path: tuple[str, ...], field: dataclasses.Field) -> str:
    """A GAN setting's default in each preset it applies to, once where they agree."""
    applies = field.metadata["applies"] or tuple(GAN_PRESETS)
    values = {name: _read(GAN_PRESETS[name].model, path) for name in applies}
    values = {name: round(value, 4) if isinstance(value, float) else value for name, value in values.items()}
    if len(set(values.values())) == 1:
        value = next(iter(values.values()))
        where = f" ({', '.join(map(preset_label, applies))})" if field.metadata["applies"] else ""
        return f"{value}{where}"
    return ", ".join(f"{value} ({preset_label(name)})" for name, value in values.items())


def _vae_default(path: tuple[str, ...], field: dataclasses.Field) -> str:
    return str(_read(VAE_PRESET.model, path))


RUN_OPTIONS = field_options(RunConfig, _run_default)
GAN_OPTIONS = field_options(GANConfig, _gan_default)
VAE_OPTIONS = field_options(VAEConfig, _vae_default)
PLACEMENT = ("coordconv", "coord_in", "coord_layers")


def run_options(command):
    """Options every model family shares: the RunConfig fields, then where a run goes."""
    return add_options([
        *(item.option for item in RUN_OPTIONS),
        grouped(click.Option(["--out"], type=click.Path(file_okay=False, path_type=Path), default=None,
                             help="Run directory [default: a new folder under runs/]."), "run"),
        grouped(click.Option(["--resume"], type=click.Path(file_okay=False, path_type=Path), default=None,
                             help="Continue the run in this directory from its latest checkpoint; only "
                                  f"{', '.join('--' + name.replace('_', '-') for name in RESUMABLE_FIELDS)} "
                                  "may change."), "run"),
        grouped(click.Option(["--config", "config_file"], type=click.Path(exists=True, dir_okay=False,
                                                                             path_type=Path), default=None,
                             help="Start from a saved config.json (any run's); options given beside it "
                                  "override it."), "run"),
    ])(command)


def placement_options(halves: tuple[str, ...], what: str):
    """The CoordConv switches: on or off, in which networks, in which layers."""
    return add_options([
        grouped(click.Option(["--coordconv"], is_flag=True, default=False, help=what), "run"),
        grouped(click.Option(["--coord-in"], type=click.Choice(["both", *halves]), default="both",
                             show_default=True, help="With --coordconv: which network gets CoordConv."),
                "run"),
        grouped(click.Option(["--coord-layers"], type=click.Choice(["all", "first"]), default="all",
                             show_default=True, help="With --coordconv: every conv layer or the first only."),
                "run"),
    ])


def given_flags() -> list[str]:
    """The options given on the command line (the others hold their defaults, or None)."""
    context = click.get_current_context()
    return [name for name in context.params
            if context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]


def flag_of(name: str) -> str:
    """The command-line flag of a parameter of the current command."""
    context = click.get_current_context()
    return next(param.opts[0] for param in context.command.params if param.name == name)


def saved_config(path: Path, model_class: type) -> tuple[RunConfig, object]:
    """The run and model configs of a saved config.json, of any version this one reads (the
    checkpoints' conversion applies); the CoordConv switches cannot be given beside it (the
    saved model already says where CoordConv is)."""
    from gen.checkpoint import upgrade
    from gen.configs import from_dict
    from gen.families import kind_of

    switched = [name for name in PLACEMENT if name in given_flags()]
    if switched:
        flags = ", ".join(map(flag_of, switched))
        raise InputError(f"--config {path} sets the model, CoordConv included; drop {flags}")
    try:
        saved = json.loads(path.read_text())
        record = upgrade({"format": 2, "kind": kind_of(model_class()), "config": saved})["config"]
        return from_dict(RunConfig, record["run"]), from_dict(model_class, record["model"])
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
        raise InputError(f"{path} is not a run's config.json ({type(error).__name__}: {error})") from None


def launch_training(kind: str, params: dict, model: object | None, schedule: Schedule | None,
                    tag: str) -> None:
    """Start a run, or resume one, from the parsed options; print where it went. `model` and
    `schedule` are the preset's (or None on --resume); `params` still holds the run options."""
    from gen import runs
    from gen.distributed import leave_world

    run_dir = params["resume"]
    run_settings = collect(RUN_OPTIONS, dict(params))
    if run_dir is not None:
        changed = [name for name in given_flags() if name not in (*RESUMABLE_FIELDS, "resume")]
        if changed:
            flags = ", ".join(map(flag_of, changed))
            raise InputError(f"--resume continues the saved config; cannot change {flags}")
        prepared = runs.prepare_resume(run_dir, kind, **run_settings)
        if prepared.task.world.is_main:
            for path, why in prepared.passed_over:
                click.echo(f"passed over {why}; set aside as {path.name}.unreadable", err=True)
            click.echo(f"resuming {run_dir} from step {prepared.start_step}")
    else:
        base = params.get("base_run")
        if base is not None:
            run = dataclasses.replace(base, **run_settings)
        else:
            run = RunConfig(**{"steps": schedule.steps, "lr_rampdown": schedule.lr_rampdown, **run_settings})
        run_dir = params["out"] or runs.default_run_dir(kind, tag)
        prepared = runs.prepare_start(run, model, run_dir)
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


def model_from(params: dict, model_class: type, options: list, preset: Callable[[dict], Preset]):
    """The model and schedule to start from (a saved config's, or the preset's for the
    CoordConv switches), with the given model options applied; None, None on --resume."""
    overrides = collect(options, params)
    if params["resume"] is not None:
        return None, None
    if params["config_file"] is None:
        chosen = preset(overrides)
        return chosen.model, chosen.schedule
    run, model = saved_config(params["config_file"], model_class)
    params["base_run"] = run
    return replace_nested(model, overrides), None


def replace_nested(config, overrides: dict):
    """A config dataclass with nested overrides applied ({"generator": {"width": 4}, ...})."""
    changes = {key: replace_nested(getattr(config, key), value) if isinstance(value, dict) else value
               for key, value in overrides.items()}
    return dataclasses.replace(config, **changes)


@train.command("gan", cls=GroupedCommand)
@placement_options(("g", "d"), "CoordConv in G and D: the authors' tiled CoordConv G (unless --arch dcgan) "
                               "and CoordConv layers in D (see --coord-in/--coord-layers).")
@add_options(item.option for item in GAN_OPTIONS)
@run_options
def train_gan(**params) -> None:
    """Train a GAN, with or without CoordConv: a DCGAN, or the authors' tiled CoordConv
    generator (the default with --coordconv); each generator has its own preset."""
    def preset(overrides: dict) -> Preset:
        generator = overrides.pop("generator", {})
        return gan_preset(params["coordconv"], params["coord_in"], params["coord_layers"],
                          generator.pop("arch", None), generator=generator,
                          discriminator=overrides.pop("discriminator", {}), **overrides)

    model, schedule = model_from(params, GANConfig, GAN_OPTIONS, preset)
    tiled = model is not None and model.generator.arch == "tiled"
    launch_training("gan", params, model, schedule, "coordconv" if params["coordconv"] or tiled else "conv")


@train.command("vae", cls=GroupedCommand)
@placement_options(("encoder", "decoder"), "CoordConv in encoder and decoder (see --coord-in); in the "
                                           "decoder it defaults to the spatial broadcast decoder.")
@add_options(item.option for item in VAE_OPTIONS)
@run_options
def train_vae(**params) -> None:
    """Train a convolutional VAE, with or without CoordConv."""
    def preset(overrides: dict) -> Preset:
        return vae_preset(params["coordconv"], params["coord_in"], params["coord_layers"],
                          params["data"] or "squares", overrides.pop("likelihood", None),
                          model=overrides.pop("model", {}), **overrides)

    model, schedule = model_from(params, VAEConfig, VAE_OPTIONS, preset)
    launch_training("vae", params, model, schedule, "coordconv" if params["coordconv"] else "conv")


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
              help="[default: tuned per task and model: 5 (classify, render) or 10 (regress) for "
                   "CoordConv, 100 (deconv) or 50 (conv regressor) for the baselines]")
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
@click.option("--rows", default=None, help="Comma-separated rows to run [default: all].")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs at once, each a process of its own (on a GPU all on the one device). On the "
                   "CPU more than 1 shares the cores, so wall times stop being each run's own.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Intra-op threads per run [default: the CPU's cores / --jobs; 1 on a GPU].")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Replace every training row's steps (a smoke run: scored on 4 paths, results go under "
                   "runs/experiments/, never into results/).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the result files [default: results/NAME].")
def experiment_run(name: str, seeds: str | None, rows: str | None, device: str, jobs: int,
                   threads: int | None, steps: int | None, out: Path | None) -> None:
    """Run every row of experiment NAME at every seed, skipping runs whose result file exists."""
    from gen.experiments import load, parse_seeds
    from gen.experiments.runner import Plan, default_threads, run

    item = load(name)
    if rows is not None:
        item = dataclasses.replace(item, rows=tuple(item.row(row) for row in dict.fromkeys(rows.split(","))))
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
