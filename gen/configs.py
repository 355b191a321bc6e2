"""Typed configs: what a run is (RunConfig), the schedule a model was tuned with, presets
that pair the two, and the conversion to and from the plain dicts stored in JSON and
checkpoints.

This module imports no torch, so the command line can build its help text from presets.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from gen.errors import InputError

# Names every layer of the toolkit shares (torch-free, so the command line can offer them).
COORD_PLACEMENTS = ("none", "first", "all")  # which convolutions of a network see coordinates
GENERATED_SOURCES = ("squares", "shapes")  # Not-so-Clevr sets: generated, with an exact geometry
DATA_SOURCES = (*GENERATED_SOURCES, "lsun", "folder", "prepared")
SPLITS = ("all", "uniform", "quadrant")
PRECISIONS = ("auto", "fp32", "bf16")

T = TypeVar("T")
M = TypeVar("M")


def from_dict(cls: type[T], values: dict[str, Any]) -> T:
    """Rebuild a (nested) config dataclass; unknown keys are an error, missing ones default."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - fields
    if unknown:
        raise InputError(f"unknown {cls.__name__} settings: {', '.join(sorted(unknown))}")
    required = {f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    if required - set(values):
        raise InputError(f"{cls.__name__} settings lack {', '.join(sorted(required - set(values)))}")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value)
        elif typing.get_origin(hint) is tuple:
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    """InputError naming the choices unless `value` is one of them."""
    if value not in choices:
        raise InputError(f"unknown {what} {value!r}; choose from {', '.join(choices)}")


def given(values: dict[str, Any]) -> dict[str, Any]:
    """The entries that were set: overrides left as None keep the preset's value."""
    return {key: value for key, value in values.items() if value is not None}


def to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as the plain dict that JSON and checkpoints hold."""
    return dataclasses.asdict(config)


@dataclass(frozen=True)
class Schedule:
    """The run settings a model's defaults were tuned with: the steps it trains on the CPU
    and the final share of them over which learning rates fall linearly towards 0."""

    steps: int
    lr_rampdown: float = 0.0


@dataclass(frozen=True)
class Preset(Generic[M]):
    """A model config and the schedule it was tuned with (docs/models.md: why each value)."""

    model: M
    schedule: Schedule

    def run_config(self, **settings: Any) -> RunConfig:
        """A RunConfig with this preset's schedule unless `settings` name steps or ramp-down."""
        schedule = {"steps": self.schedule.steps, "lr_rampdown": self.schedule.lr_rampdown}
        return RunConfig(**{**schedule, **settings})


GROUPS = ("run", "data", "generator", "discriminator", "model", "loss", "speed", "evaluation")


def setting(default: Any, help: str, *, group: str, flag: str | None = None,
            choices: tuple[Any, ...] | None = None, minimum: float | None = None,
            maximum: float | None = None,
            resumable: bool = False, path: str | bool = False,
            applies: tuple[str, ...] | None = None,
            default_help: str | None = None) -> Any:
    """A config field that is also a command-line option: its help text, option group and
    checks live here, once (gen.options builds the option). `flag` defaults to the field's
    name; `path` True takes a path, "file" a file's, saved absolute; `resumable` fields may
    change on --resume; `applies` names the presets the setting is for (help shows only their
    defaults); `default_help` stands for a default that depends on other switches."""
    return field(default=default, metadata={
        "help": help, "group": group, "flag": flag, "choices": choices, "minimum": minimum,
        "maximum": maximum, "resumable": resumable, "path": path, "applies": applies,
        "default_help": default_help})


@dataclass
class RunConfig:
    """What every training run has, whatever the model. `steps` has no default of its own:
    it comes from the model's preset (Preset.run_config) or from the caller."""

    steps: int = setting(None, "Training steps (on --resume: the new total; without it, the saved one).",
                         group="run", minimum=1, resumable=True)
    lr_rampdown: float = setting(0.0, "Final share of the steps over which learning rates fall linearly "
                                 "towards 0.", group="loss", minimum=0, maximum=1)
    data: str = setting("squares", "squares/shapes are generated; lsun/folder/prepared read --root.",
                        group="data", choices=DATA_SOURCES)
    root: str | None = setting(None, "lsun: folder holding bedroom_train_lmdb; folder: image tree; prepared: "
                               "a folder made by gen data prepare.", group="data", path=True)
    split: str = setting("all", "squares: train on this split's train part.", group="data", choices=SPLITS)
    resolution: int = setting(64, "Image size in pixels.", group="data", choices=(32, 64, 128))
    batch_size: int = setting(32, "Images per step.", group="run", minimum=2)
    seed: int = setting(0, "Seeds the model, the data order and the noise.", group="run")
    device: str = setting("auto", "auto picks cuda when there is one.", group="speed",
                          choices=("auto", "cpu", "cuda"), resumable=True)
    workers: int = setting(2, "Decoding processes for lsun/folder.", group="data", minimum=0)
    sync_bn: bool = setting(False, "Under torchrun: BatchNorm statistics of the global batch rather than of "
                            "each rank's slice (the same model at any number of processes).", group="speed",
                            resumable=True)
    precision: str = setting("auto", "Of forward passes: bf16 autocast keeps fp32 weights; auto is bf16 on "
                             "GPUs that compute it natively, else fp32.", group="speed", choices=PRECISIONS,
                             resumable=True)
    channels_last: bool | None = setting(None, "NHWC memory layout.", group="speed", resumable=True,
                                         default_help="on GPUs")
    compile: bool = setting(False, "torch.compile the networks a step runs (G and D; not D with R1, whose "
                            "double backward torch.compile cannot run).", group="speed", resumable=True)
    log_every: int = setting(100, "Steps between progress lines and TensorBoard scalars.", group="run",
                             minimum=1)
    image_every: int = setting(1000, "Steps between sample grids in TensorBoard.", group="run", minimum=1)
    ckpt_every: int = setting(1000, "Steps between checkpoints.", group="run", minimum=1)
    keep: int | None = setting(5, "Step snapshots kept besides checkpoint.pt, the newest.", group="run",
                               minimum=1, resumable=True)
    eval_every: int = setting(2000, "Steps between evaluations: geometric metrics of samples "
                              "(squares/shapes), FID and its companions (natural images).",
                              group="evaluation", minimum=1, resumable=True)
    eval_samples: int = setting(3136, "Samples the geometric metrics measure (squares/shapes).",
                                group="evaluation", minimum=1, resumable=True)
    fid_samples: int | None = setting(None, "Natural images: samples and real images each FID evaluation "
                                      "measures (0: no FID).", group="evaluation", minimum=0, resumable=True,
                                      default_help="5000 on GPUs, 1000 on the CPU")
    inception_weights: str | None = setting(None, "torch-fidelity's Inception-v3 weights file for FID, for "
                                            "offline machines.", group="evaluation", path="file",
                                            resumable=True,
                                            default_help="$GEN_INCEPTION_WEIGHTS, else downloaded once to "
                                                         "torch hub's cache")

    def __post_init__(self) -> None:
        if self.steps is None:
            raise InputError("RunConfig settings lack steps (a preset's schedule or the caller gives them)")
        if self.steps < 1:
            raise InputError(f"steps must be at least 1, got {self.steps}")
        if not 0 <= self.lr_rampdown <= 1:
            raise InputError(f"lr_rampdown must be in [0, 1], got {self.lr_rampdown}")
        check_choice("precision", self.precision, PRECISIONS)
        if self.fid_samples is not None and self.fid_samples < 0:
            raise InputError(f"fid_samples must be 0 (no FID) or more, got {self.fid_samples}")
        if self.keep is not None and self.keep < 1:
            raise InputError(f"keep must be at least 1 snapshot, got {self.keep}")


# What a resume may change: how long, where, how fast and how the run is measured; not its model.
RESUMABLE_FIELDS = tuple(item.name for item in dataclasses.fields(RunConfig) if item.metadata["resumable"])
