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


def _or_input_error(function, *args, **kwargs):
    """Call a library function, turning its ValueError on bad input into a one-line CLI error."""
    try:
        return function(*args, **kwargs)
    except ValueError as error:
        raise InputError(str(error)) from None


if __name__ == "__main__":
    main()
