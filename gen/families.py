"""The model families a run can train, by the `kind` a checkpoint records."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gen.errors import InputError
from gen.gan.config import GANConfig
from gen.gan.task import GANTask
from gen.task import Task
from gen.vae.config import VAEConfig
from gen.vae.task import VAETask


@dataclass(frozen=True)
class Family:
    config: type[GANConfig] | type[VAEConfig]
    task: type[Task]


FAMILIES: dict[str, Family] = {"gan": Family(GANConfig, GANTask), "vae": Family(VAEConfig, VAETask)}


def family(kind: str) -> Family:
    """The family a checkpoint's `kind` names."""
    if kind not in FAMILIES:
        raise InputError(f"unknown model kind {kind!r}; choose from {', '.join(FAMILIES)}")
    return FAMILIES[kind]


def kind_of(config: GANConfig | VAEConfig) -> str:
    """The family name of a model config."""
    for kind, entry in FAMILIES.items():
        if isinstance(config, entry.config):
            return kind
    raise TypeError(f"not a model config: {type(config).__name__}")


def build_task(model: GANConfig | VAEConfig, device: torch.device, seed: int = 0) -> Task:
    """A freshly initialised task of the model's family, on `device`."""
    return family(kind_of(model)).task(model, device, seed)
