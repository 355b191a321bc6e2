"""Typed configs: what a run is (RunConfig), the schedule a model was tuned with, presets
that pair the two, and the conversion to and from the plain dicts stored in JSON and
checkpoints.

This module imports no torch, so the command line can build its help text from presets.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
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
    """The run settings a model's defaults were tuned with: the steps that fit the CPU budget
    and the final share of them over which learning rates fall linearly towards 0."""

    steps: int
    lr_rampdown: float = 0.0


@dataclass(frozen=True)
class Preset(Generic[M]):
    """A model config and the schedule it was tuned with (README: how each was measured)."""

    model: M
    schedule: Schedule

    def run_config(self, **settings: Any) -> RunConfig:
        """A RunConfig with this preset's schedule unless `settings` name steps or ramp-down."""
        schedule = {"steps": self.schedule.steps, "lr_rampdown": self.schedule.lr_rampdown}
        return RunConfig(**{**schedule, **settings})


# What a resume may change: how long, where, how fast and how the run is measured; not its model.
# (sync_bn: BatchNorm over the global batch, the same function as one process: fit for resuming
# a run at another world size.)
RESUMABLE_FIELDS = ("steps", "device", "keep", "eval_every", "eval_samples", "fid_samples",
                    "inception_weights", "precision", "channels_last", "compile", "sync_bn")


@dataclass
class RunConfig:
    """What every training run has, whatever the model. `steps` has no default of its own:
    it comes from the model's preset (Preset.run_config) or from the caller."""

    steps: int
    lr_rampdown: float = 0.0
    data: str = "squares"
    root: str | None = None
    split: str = "all"
    resolution: int = 64
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"
    workers: int = 2
    sync_bn: bool = False  # torchrun: BatchNorm statistics over the global batch, not each rank's slice
    precision: str = "auto"  # of forward passes: fp32, bf16 (autocast), auto: bf16 on GPUs (gen.speed)
    channels_last: bool | None = None  # NHWC layout; None: on GPUs
    compile: bool = False  # torch.compile the networks a step runs
    log_every: int = 100
    image_every: int = 1000
    ckpt_every: int = 1000
    keep: int | None = 5  # step snapshots kept besides checkpoint.pt (the newest; None: all)
    eval_every: int = 2000
    eval_samples: int = 3136  # squares/shapes: samples the geometric metrics measure
    fid_samples: int | None = None  # natural images: samples (and real images) FID measures; 0: no FID;
    # None: 5000 on GPUs, 1000 on the CPU (where Inception-v3 measures about 8 images/s)
    inception_weights: str | None = None  # None: $GEN_INCEPTION_WEIGHTS, else torch hub's copy

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise InputError(f"steps must be at least 1, got {self.steps}")
        if not 0 <= self.lr_rampdown <= 1:
            raise InputError(f"lr_rampdown must be in [0, 1], got {self.lr_rampdown}")
        check_choice("precision", self.precision, PRECISIONS)
        if self.fid_samples is not None and self.fid_samples < 0:
            raise InputError(f"fid_samples must be 0 (no FID) or more, got {self.fid_samples}")
        if self.keep is not None and self.keep < 1:
            raise InputError(f"keep must be at least 1 snapshot, got {self.keep}")
