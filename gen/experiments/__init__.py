"""Named, controlled experiments: each a small TOML file of rows (commands exactly as a user
types them) that vary one factor, run over several seeds into one result file per run, and
rendered into the docs' results pages (gen.experiments.report).

Definitions live beside this module in `definitions/NAME.toml`; torch is not imported here,
so `gen experiment list` stays fast.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gen.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

DEFINITIONS = Path(__file__).resolve().parent / "definitions"
# Flags the runner sets for every run: a row that gave one would run something else than recorded.
RUNNER_FLAGS = ("--seed", "--out", "--device", "--json", "--resume", "--quiet")


@dataclass(frozen=True)
class Metric:
    """A column of the results: its label and its path into a result record (dot-separated)."""

    label: str
    path: str

    def read(self, record: dict) -> float | None:
        """The number at this path of a record, or None where the record has none."""
        value: object = record
        for key in self.path.split("."):
            if not isinstance(value, dict) or value.get(key) is None:
                return None
            value = value[key]
        return float(value) if isinstance(value, (int, float)) else None


@dataclass(frozen=True)
class Row:
    """One arm of an experiment: a `gen train ...` or `gen toy ...` command, and the row it is
    paired with seed by seed (its baseline), if any."""

    name: str
    command: str
    baseline: str | None = None

    @property
    def argv(self) -> list[str]:
        """The command's arguments after `gen`."""
        return shlex.split(self.command)[1:]

    @property
    def kind(self) -> str:
        """'gan', 'vae' (training rows) or 'toy'."""
        argv = self.argv
        return argv[1] if argv[0] == "train" else "toy"


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    factor: str  # the one thing the rows vary
    description: str  # what the rows hold equal, in a few present-tense sentences
    finding: str  # what the numbers say, whichever way it goes
    seeds: tuple[int, ...]
    rows: tuple[Row, ...]
    metrics: tuple[Metric, ...]
    headline: tuple[str, ...]  # metric labels the README's results table shows
    paths: int = 128  # interpolation paths scored per run (training rows on squares or shapes)
    images: bool = True  # a sample grid and a position heat map per run
    source: Path = field(default=Path(), compare=False)

    def row(self, name: str) -> Row:
        for row in self.rows:
            if row.name == name:
                return row
        raise InputError(f"experiment {self.name} has no row {name!r}; rows: "
                         f"{', '.join(row.name for row in self.rows)}")


def names() -> list[str]:
    """Every defined experiment, in file-name order."""
    return sorted(path.stem for path in DEFINITIONS.glob("*.toml"))


def load(name: str) -> Experiment:
    """The experiment of that name; InputError naming the known ones when there is none."""
    path = DEFINITIONS / f"{name}.toml"
    if not path.is_file():
        raise InputError(f"unknown experiment {name!r}; choose from {', '.join(names())}")
    return parse(path)


def load_all() -> list[Experiment]:
    return [load(name) for name in names()]


def parse(path: Path) -> Experiment:
    """An experiment from its TOML file, checked: commands that the runner can run as they are
    written, baselines that name rows, headline labels that name metrics."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise InputError(f"{path}: not a readable experiment file ({error})") from None
    try:
        rows = tuple(Row(row["name"], row["command"], row.get("baseline")) for row in data["rows"])
        metrics = tuple(Metric(metric["label"], metric["path"]) for metric in data["metrics"])
        experiment = Experiment(
            name=path.stem, title=data["title"], factor=data["factor"],
            description=data["description"].strip(),
            finding=data["finding"].strip(), seeds=tuple(data["seeds"]), rows=rows, metrics=metrics,
            headline=tuple(data.get("headline", [metrics[0].label])), paths=data.get("paths", 128),
            images=data.get("images", True), source=path)
    except (KeyError, TypeError) as error:
        raise InputError(f"{path}: missing or malformed field {error}") from None
    check(experiment)
    return experiment


def check(experiment: Experiment) -> None:
    where = experiment.source
    if len(experiment.seeds) < 3:
        raise InputError(f"{where}: at least 3 seeds per row, got {list(experiment.seeds)}")
    names_seen = [row.name for row in experiment.rows]
    if len(set(names_seen)) != len(names_seen):
        raise InputError(f"{where}: row names repeat: {names_seen}")
    for row in experiment.rows:
        argv = shlex.split(row.command)
        if len(argv) < 2 or argv[0] != "gen" or argv[1] not in ("train", "toy"):
            raise InputError(f"{where}: row {row.name}: commands are `gen train ...` or `gen toy ...`, "
                             f"got {row.command!r}")
        if argv[1] == "train" and (len(argv) < 3 or argv[2] not in ("gan", "vae")):
            raise InputError(f"{where}: row {row.name}: `gen train gan` or `gen train vae`, "
                             f"got {row.command!r}")
        given = [flag for flag in RUNNER_FLAGS if any(arg.split("=")[0] == flag for arg in argv)]
        if given:
            raise InputError(f"{where}: row {row.name} sets {', '.join(given)}, which the runner sets "
                             "per run")
        if row.baseline is not None and row.baseline not in names_seen:
            raise InputError(f"{where}: row {row.name}'s baseline {row.baseline!r} is not a row")
    labels = {metric.label for metric in experiment.metrics}
    unknown = [label for label in experiment.headline if label not in labels]
    if unknown:
        raise InputError(f"{where}: headline names no metric: {', '.join(unknown)}")


def parse_seeds(text: str) -> tuple[int, ...]:
    """'0,1,2' -> (0, 1, 2); InputError for anything but distinct non-negative integers."""
    try:
        seeds = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise InputError(f"--seeds must be comma-separated integers such as 0,1,2; got {text!r}") from None
    if any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
        raise InputError(f"--seeds must be distinct integers of at least 0; got {text!r}")
    return seeds
