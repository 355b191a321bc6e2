"""Config dataclasses to and from the plain dicts stored in JSON and checkpoints."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def from_dict(cls: type[T], values: dict[str, Any]) -> T:
    """Rebuild a (nested) config dataclass; unknown keys are an error, missing ones default."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - fields
    if unknown:
        raise ValueError(f"unknown {cls.__name__} settings: {', '.join(sorted(unknown))}")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value)
        elif typing.get_origin(hint) is tuple:
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


@dataclass
class RunConfig:
    """What every training run has, whatever the model."""

    data: str = "squares"
    root: str | None = None
    split: str = "all"
    resolution: int = 64
    steps: int = 6000
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"
    workers: int = 2
    log_every: int = 100
    image_every: int = 1000
    ckpt_every: int = 1000
    eval_every: int = 2000
    eval_samples: int = 3136
    lr_rampdown: float = 0.0  # final share of the steps over which learning rates fall linearly towards 0
