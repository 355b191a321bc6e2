"""Starting, resuming and re-loading training runs of any model kind.

This is the glue between the CLI and the shared loop: it picks the task class for a
kind, builds the data stream, and restores everything a checkpoint holds.
"""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import torch

from gen.configs import from_dict
from gen.data.batches import DataSpec, make_batches
from gen.gan.task import GANConfig, GANTask
from gen.metrics import evaluate_samples
from gen.training import (
    RunConfig,
    draw_samples,
    load_checkpoint,
    resolve_device,
    seed_everything,
    set_rng_state,
    train,
)
from gen.vae.evaluation import reconstruction_metrics
from gen.vae.task import VAEConfig, VAETask

TASKS = {"gan": (GANConfig, GANTask), "vae": (VAEConfig, VAETask)}


def default_run_dir(kind: str, tag: str = "") -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{kind}{'-' + tag if tag else ''}-{stamp}"


def build_task(kind: str, model_config, device: torch.device, seed: int):
    _, task_class = TASKS[kind]
    return task_class(model_config, device, seed)


def evaluator(spec: DataSpec, run: RunConfig, device: torch.device):
    """Geometric metrics of samples for Not-so-Clevr data (natural images get none), plus
    reconstruction metrics on the held-out split for models that reconstruct."""
    if spec.geometry is None:
        return None

    def evaluate(task) -> dict:
        samples = draw_samples(task, run.eval_samples, run.seed + 2, device)
        metrics = evaluate_samples(samples, dataset=spec.geometry, seed=run.seed, value_range=(-1.0, 1.0))
        if spec.held_out is not None and hasattr(task, "reconstruct"):
            metrics.update(reconstruction_metrics(task, spec.held_out, device))
        return metrics

    return evaluate


def start(kind: str, run: RunConfig, model_config, run_dir: Path) -> Path:
    """Train a new run in run_dir (which must not hold a checkpoint yet)."""
    if (run_dir / "checkpoint.pt").exists():
        raise ValueError(f"{run_dir} already holds a run; use --resume {run_dir} to continue it")
    device = resolve_device(run.device)
    seed_everything(run.seed)
    spec = make_batches(run.data, root=run.root, split=run.split, resolution=run.resolution,
                        batch_size=run.batch_size, seed=run.seed, workers=run.workers, device=device)
    model_config = model_config.for_data(spec.channels, run.resolution)
    task = build_task(kind, model_config, device, run.seed)
    config = {"run": dataclasses.asdict(run), "model": dataclasses.asdict(model_config)}
    return train(kind, task, run, config, spec.batches, run_dir, device, 0, evaluator(spec, run, device))


def resume(run_dir: Path, steps: int | None = None, device_name: str | None = None) -> Path:
    """Continue a run from its latest checkpoint, optionally to a new total step count."""
    payload = load_checkpoint(run_dir)
    kind = payload["kind"]
    config_class, _ = TASKS[kind]
    run = from_dict(RunConfig, payload["config"]["run"])
    if steps is not None:
        if steps <= payload["step"]:
            raise ValueError(f"--steps {steps} is not past the checkpoint's step {payload['step']}")
        run = dataclasses.replace(run, steps=steps)
    if device_name is not None:
        run = dataclasses.replace(run, device=device_name)
    device = resolve_device(run.device)
    model_config = from_dict(config_class, payload["config"]["model"])
    spec = make_batches(run.data, root=run.root, split=run.split, resolution=run.resolution,
                        batch_size=run.batch_size, seed=run.seed, workers=run.workers, device=device)
    task = build_task(kind, model_config, device, run.seed)
    task.load_state_dict(payload["task"])
    spec.batches.load_state_dict(payload["data"])
    set_rng_state(payload["rng"])
    config = {"run": dataclasses.asdict(run), "model": dataclasses.asdict(model_config)}
    return train(kind, task, run, config, spec.batches, run_dir, device, payload["step"],
                 evaluator(spec, run, device))


def load_task(checkpoint: str | Path, device: torch.device):
    """The trained task of a checkpoint, for sampling, metrics and interpolation."""
    payload = load_checkpoint(checkpoint)
    config_class, _ = TASKS[payload["kind"]]
    model_config = from_dict(config_class, payload["config"]["model"])
    task = build_task(payload["kind"], model_config, device, 0)
    task.load_state_dict(payload["task"])
    return task, payload
