"""The one training loop shared by GAN and VAE.

A model family plugs in as a `gen.task.Task`: it owns its networks, optimisers and the maths
of one step; this loop owns everything around it (progress, TensorBoard, evaluation, sample
grids, checkpoints). Steps return detached tensors and the loop reads them back only every
`log_every` steps, so a step never waits on the device.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from gen.checkpoint import CHECKPOINT_NAME, Checkpoint, config_record
from gen.configs import RunConfig
from gen.devices import keep_freed_host_memory
from gen.families import kind_of
from gen.fileio import save_json
from gen.images import grid_image, save_grid, to_uint8
from gen.metrics.report import flatten_metrics, save_metrics
from gen.task import Task, draw_samples


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ScalarLog:
    """Sums step scalars on the device; the host reads them only when logging."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, scalars: dict[str, torch.Tensor]) -> None:
        for key, value in scalars.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value.detach().clone()
        self.count += 1

    def flush(self) -> dict[str, float]:
        means = {key: value.item() / self.count for key, value in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


def train(
    task: Task,
    run: RunConfig,
    batches,
    run_dir: Path,
    device: torch.device,
    start_step: int = 0,
    evaluate: Callable[[Task], dict] | None = None,
) -> Path:
    """Run `task` from `start_step` to `run.steps`, writing logs and checkpoints to run_dir.

    `batches` yields real image batches on `device` and can save/restore its position;
    `evaluate` measures the task (its samples, reconstructions) as a JSON-ready dict.
    """
    from torch.utils.tensorboard import SummaryWriter

    kind = kind_of(task.config)
    if device.type == "cpu":
        keep_freed_host_memory()
    run_dir.mkdir(parents=True, exist_ok=True)
    save_json(run_dir / "config.json", config_record(run, task.config))
    writer = SummaryWriter(str(run_dir / "tb"), purge_step=start_step + 1 if start_step else None)
    fixed = task.latents(64, torch.Generator(device=device).manual_seed(run.seed + 1))
    scalars = ScalarLog()
    progress = tqdm(range(start_step + 1, run.steps + 1), initial=start_step, total=run.steps,
                    desc=f"train {kind}", unit="step", dynamic_ncols=True, mininterval=1.0)
    started = time.perf_counter()
    for step in progress:
        set_lr_scale(task, lr_scale(step, run.steps, run.lr_rampdown))
        scalars.add(task.train_step(next(batches), step))
        if step % run.log_every == 0 or step == run.steps:
            means = scalars.flush()
            for key, value in means.items():
                writer.add_scalar(key, value, step)
            writer.add_scalar("speed/steps_per_second",
                              (step - start_step) / (time.perf_counter() - started), step)
            progress.set_postfix({key.split("/")[-1]: f"{value:.3f}" for key, value in means.items()})
        if step % run.image_every == 0 or step == run.steps:
            write_images(writer, task, fixed, step)
        if evaluate is not None and (step % run.eval_every == 0 or step == run.steps):
            metrics = evaluate(task)
            for key, value in flatten_metrics(metrics).items():
                writer.add_scalar(f"metrics/{key}", value, step)
            save_metrics(run_dir / f"metrics-{step:07d}.json", metrics)
            save_metrics(run_dir / "metrics.json", {"step": step, **metrics})
        if step % run.ckpt_every == 0 or step == run.steps:
            checkpoint = Checkpoint(kind, run, task.config, step, task.state_dict(), rng_state(),
                                    batches.state_dict())
            checkpoint.save(run_dir / f"checkpoint-{step:07d}.pt")
            checkpoint.save(run_dir / CHECKPOINT_NAME)
    writer.close()
    final = draw_samples(task, 64, run.seed + 1, device)
    save_grid(run_dir / "samples.png", to_uint8(final))
    return run_dir / CHECKPOINT_NAME


def lr_scale(step: int, steps: int, rampdown: float) -> float:
    """Learning-rate factor at a step: 1, then linear towards 0 over the last `rampdown`
    share of the steps (1 / span at the last step; as StyleGAN's ramp-down), so the last
    updates settle instead of jittering. It follows `steps`, so a run resumed with a larger
    total ramps down again at the new end."""
    if not 0 <= rampdown <= 1:
        raise ValueError(f"lr_rampdown must be in [0, 1], got {rampdown}")
    span = rampdown * steps
    return 1.0 if span == 0 else min(1.0, (steps - step + 1) / span)


def set_lr_scale(task: Task, scale: float) -> None:
    """Set every optimiser's learning rate to `scale` times its configured one (kept in the
    param group as `initial_lr`, so it survives checkpoints)."""
    for optimizer in task.optimizers().values():
        for group in optimizer.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * scale


def write_images(writer, task: Task, fixed: torch.Tensor, step: int) -> None:
    with torch.no_grad():
        images = {"samples": task.sample(fixed), **task.extra_images()}
    for name, batch in images.items():
        nrow = math.ceil(math.sqrt(len(batch)))
        writer.add_image(f"images/{name}", grid_image(to_uint8(batch), nrow), step, dataformats="HWC")
