"""The checkpoint format: one typed record, one loader, and the one place where payloads
of older formats are converted to the current one.

A checkpoint is a torch file of plain tensors, numbers and strings, loaded with
weights_only=True (data, never code). Payload keys are read here and nowhere else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gen.configs import RunConfig, from_dict, to_dict
from gen.errors import InputError
from gen.families import build_task, family
from gen.fileio import load_torch_data, save_torch
from gen.gan.config import GANConfig
from gen.task import Task
from gen.vae.config import VAEConfig

FORMAT = 2
CHECKPOINT_NAME = "checkpoint.pt"

# Format 1 stored generator configs before the tiled G's fields had their tuned defaults;
# a missing field meant the first tiled G's value.
FORMAT_1_GENERATOR_DEFAULTS = {"mapping_layers": 0, "first_gain": 1.0, "mapping_tanh": False}

# The tiled G's object-layer fields, removed as they built one data set's generating process
# into G: each field's value that meant "not used" (None: any value, as it only qualified
# another). A checkpoint with all of them unused is the generic G and loads; one that used any
# is refused, naming the last commit that reads it.
REMOVED_GENERATOR_FIELDS = {
    "objects": 1, "radial": False, "box_distance": False, "kind_coins": False, "kind_warmup": None,
    "coin_box": None, "snap_centres": False, "offset_coords": True, "chained_centres": False,
    "latent_masks": True, "centre_spread": 0.0, "colour_coin": False, "colour_start": "drawn",
    "start_colours": None,
}
LAST_OBJECT_LAYERS_COMMIT = "4ceb405"


def config_record(run: RunConfig, model: GANConfig | VAEConfig) -> dict[str, Any]:
    """A run's config as plain data, as `config.json` and checkpoints hold it."""
    return {"run": to_dict(run), "model": to_dict(model)}


@dataclass
class Checkpoint:
    """Everything needed to sample from a run or resume it exactly: its kind and configs,
    the step, the task's state (networks, optimisers, noise), the global RNG state and the
    data stream's position."""

    kind: str
    run: RunConfig
    model: GANConfig | VAEConfig
    step: int
    task: dict[str, Any]
    rng: dict[str, Any]
    data: dict[str, Any]

    def to_payload(self) -> dict[str, Any]:
        """The plain-data dict a checkpoint file holds."""
        return {"format": FORMAT, "kind": self.kind, "config": config_record(self.run, self.model),
                "step": self.step,
                "task": self.task, "rng": self.rng, "data": self.data}

    def save(self, path: str | os.PathLike) -> None:
        save_torch(path, self.to_payload())

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Checkpoint:
        payload = upgrade(payload)
        config = payload["config"]
        model_class = family(payload["kind"]).config
        return cls(kind=payload["kind"], run=from_dict(RunConfig, config["run"]),
                   model=from_dict(model_class, config["model"]), step=payload["step"],
                   task=payload["task"], rng=payload["rng"], data=payload["data"])


def upgrade(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload of any format this version reads, converted to the current format."""
    version = payload.get("format")
    if version == 1:
        model = payload["config"]["model"]
        if payload["kind"] == "gan":
            model = {**model, "generator": {**FORMAT_1_GENERATOR_DEFAULTS, **model["generator"]}}
        payload = {**payload, "format": 2, "config": {**payload["config"], "model": model}}
        version = 2
    if version != FORMAT:
        raise InputError(f"checkpoint format {version!r} is not one this version reads (1 to {FORMAT})")
    run = payload["config"]["run"]
    if "keep" not in run:  # runs from before snapshot rotation kept every snapshot: so they go on
        run = {**run, "keep": None}
    if "fid_samples" not in run:  # runs from before FID measured none: so they go on
        run = {**run, "fid_samples": 0}
    if "precision" not in run:  # runs from before the fast paths: fp32, NCHW, wherever resumed
        run = {**run, "precision": "fp32", "channels_last": False}
    model = payload["config"]["model"]
    if "generator" in model:
        model = {**model, "generator": without_object_layers(model["generator"])}
    payload = {**payload, "config": {**payload["config"], "run": run, "model": model}}
    return payload


def without_object_layers(generator: dict[str, Any]) -> dict[str, Any]:
    """A stored generator config without the removed object-layer fields; InputError when
    the model used any of them, as its weights are not a generic tiled G's."""
    used = sorted(name for name, unused in REMOVED_GENERATOR_FIELDS.items()
                  if name in generator and unused is not None and generator[name] != unused)
    if used:
        raise InputError(f"this checkpoint's G uses object layers ({', '.join(used)}), which this version "
                         f"no longer has; load it with coordgen at commit {LAST_OBJECT_LAYERS_COMMIT}")
    return {name: value for name, value in generator.items() if name not in REMOVED_GENERATOR_FIELDS}


def checkpoint_path(path: str | os.PathLike) -> Path:
    """The checkpoint file of a path: the file itself, or a run directory's latest."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint file or a run directory's latest checkpoint, of any known format."""
    path = checkpoint_path(path)
    if not path.is_file():
        raise InputError(f"no checkpoint at {path}")
    payload = load_torch_data(path, "checkpoint")
    if not isinstance(payload, dict) or not {"format", "kind", "config"} <= set(payload):
        raise InputError(f"{path} is not a coordgen checkpoint")
    return Checkpoint.from_payload(payload)


def snapshot_name(step: int) -> str:
    """The file name of a run's snapshot at a step (kept beside checkpoint.pt)."""
    return f"checkpoint-{step:07d}.pt"


def snapshots(run_dir: Path) -> list[Path]:
    """A run's step snapshots, oldest first."""
    return sorted(run_dir.glob("checkpoint-[0-9]*.pt"))


def load_latest_good(run_dir: str | os.PathLike) -> tuple[Checkpoint, list[tuple[Path, str]]]:
    """The newest readable checkpoint of a run directory: checkpoint.pt, else its snapshots
    from the newest down (a file damaged by a failing disk or a foreign hand); with each
    unreadable file passed over and why. InputError when none is readable."""
    run_dir = Path(run_dir)
    candidates = [run_dir / CHECKPOINT_NAME, *reversed(snapshots(run_dir))]
    skipped = []
    for path in candidates:
        if not path.is_file():
            continue
        try:
            return load_checkpoint(path), skipped
        except InputError as error:
            skipped.append((path, str(error)))
    if not skipped:
        raise InputError(f"no checkpoint in {run_dir}")
    raise InputError(f"no readable checkpoint in {run_dir}: {'; '.join(why for _, why in skipped)}")


def load_task(path: str | os.PathLike, device: torch.device) -> tuple[Task, Checkpoint]:
    """The trained task of a checkpoint (file or run directory) and the checkpoint itself,
    for sampling, metrics and interpolation."""
    record = load_checkpoint(path)
    task = build_task(record.model, device)
    task.load_state_dict(record.task)
    return task, record
