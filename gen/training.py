"""The one training loop shared by GAN and VAE.

A model family plugs in as a `gen.task.Task`: it owns its networks, optimisers and the maths
of one step; this loop owns everything around it (progress, TensorBoard, evaluation, sample
grids, checkpoints). Steps return detached tensors and the loop reads them back only every
`log_every` steps, so a step never waits on the device.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from gen.checkpoint import CHECKPOINT_NAME, Checkpoint, config_record, snapshot_name, snapshots
from gen.configs import RunConfig
from gen.devices import keep_freed_host_memory
from gen.distributed import World
from gen.errors import RunStopped
from gen.families import kind_of
from gen.fileio import save_json
from gen.images import grid_image, save_grid, to_uint8
from gen.metrics.report import flatten_metrics, save_metrics
from gen.task import Task, draw_samples


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def rng_state() -> dict[str, Any]:
    """The global generators' states. CUDA's only once CUDA is in use, so that a CPU run on
    a GPU host starts no CUDA context."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore rng_state(); a run resumed on fewer GPUs than it saved restores those it has."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        for index, cuda_state in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)


class ScalarLog:
    """Sums step scalars on the device; the host reads them only when logging. Each is the
    mean over the steps that reported it (the R1 penalty comes every `r1_every` steps)."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, scalars: dict[str, torch.Tensor]) -> None:
        for key, value in scalars.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value.detach().clone()
            self.counts[key] = self.counts.get(key, 0) + 1

    def flush(self) -> dict[str, float]:
        means = {key: value.item() / self.counts[key] for key, value in self.sums.items()}
        self.sums, self.counts = {}, {}
        return means


@dataclass
class Outcome:
    """How a training call ended: the latest checkpoint, its step, and the signal that
    stopped the run early (None when it ran to the end)."""

    checkpoint: Path
    step: int
    stopped_by: str | None = None


class StopRequests:
    """SIGINT and SIGTERM (what a cluster scheduler sends before it kills a job) ask the loop
    to stop after the current step and save, instead of killing it mid-step. Later signals
    are ignored (the first is kept), so a second Ctrl-C cannot interrupt the save. Handlers
    are installed only in the main thread (Python allows no other) and restored on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame) -> None:
        self.received = self.received or signal.Signals(signum).name

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def check_finite_scalars(means: dict[str, float], step: int, last_saved: int | None) -> None:
    """RunStopped naming the first non-finite logged loss (the loop reads losses back only
    at log intervals, so this costs no host sync of its own)."""
    for key, value in means.items():
        if not math.isfinite(value):
            raise RunStopped(f"{key} is {value} in the steps up to {step}: training diverged; "
                             + kept_state(last_saved))


def check_finite_weights(task: Task, step: int, last_saved: int | None) -> None:
    """RunStopped if any network holds a non-finite weight: never save such a state."""
    for name, net in task.networks().items():
        finite = torch.stack([p.isfinite().all() for p in net.parameters()]).all()
        if not bool(finite):
            raise RunStopped(f"the {name} has non-finite weights at step {step}: training diverged; "
                             + kept_state(last_saved))


def kept_state(last_saved: int | None) -> str:
    if last_saved is None:
        return "no checkpoint was saved before it"
    return f"the newest checkpoint kept is step {last_saved}, the last finite state"


def save_checkpoint(checkpoint: Checkpoint, run_dir: Path, keep: int | None) -> None:
    """The step's snapshot and checkpoint.pt, each written atomically; then only the newest
    `keep` snapshots stay (None: all). A failed write leaves the previous files whole and
    stops the run with one line."""
    with write_errors_stop(f"the step {checkpoint.step} checkpoint", run_dir,
                           "the previous checkpoint is intact"):
        checkpoint.save(run_dir / snapshot_name(checkpoint.step))
        checkpoint.save(run_dir / CHECKPOINT_NAME)
    if keep is not None:
        for old in snapshots(run_dir)[:-keep]:
            old.unlink(missing_ok=True)


@contextlib.contextmanager
def write_errors_stop(what: str, run_dir: Path, kept: str) -> Iterator[None]:
    """A failed write (full disk, read-only or vanished directory) as RunStopped: one line
    naming what could not be written and what is kept. torch.save reports a short write as
    a RuntimeError, so that counts too."""
    try:
        yield
    except (OSError, RuntimeError) as error:
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise RunStopped(f"could not write {what} in {run_dir} ({reason}); {kept}") from None


def train(
    task: Task,
    run: RunConfig,
    batches,
    run_dir: Path,
    device: torch.device,
    start_step: int = 0,
    evaluate: Callable[[Task], dict] | None = None,
) -> Outcome:
    """Run `task` from `start_step` to `run.steps`, writing logs and checkpoints to run_dir.

    `batches` yields real image batches on `device` and can save/restore its position;
    `evaluate` measures the task (its samples, reconstructions) as a JSON-ready dict. A
    SIGINT or SIGTERM ends the run after the current step with a checkpoint of it; a
    non-finite loss or weight, or a failed checkpoint write, raises RunStopped. Under
    several ranks (`task.world`) only rank 0 writes and evaluates, and every stop is agreed.
    """
    from torch.utils.tensorboard import SummaryWriter

    world = task.world
    with StopRequests() as stop:
        kind = kind_of(task.config)
        if device.type == "cpu":
            keep_freed_host_memory()
        writer = None
        if world.is_main:
            with write_errors_stop("the run's config", run_dir, "nothing was trained"):
                run_dir.mkdir(parents=True, exist_ok=True)
                save_json(run_dir / "config.json", config_record(run, task.config))
            writer = SummaryWriter(str(run_dir / "tb"), purge_step=start_step + 1 if start_step else None)
        fixed = task.latents(64, torch.Generator(device=device).manual_seed(run.seed + 1))
        scalars = ScalarLog()
        progress = tqdm(range(start_step + 1, run.steps + 1), initial=start_step, total=run.steps,
                        desc=f"train {kind}", unit="step", dynamic_ncols=True, mininterval=1.0,
                        disable=not world.is_main)
        started = time.perf_counter()
        last_saved = start_step if start_step else None
        step, stopping = start_step, False
        try:
            for step in progress:
                set_lr_scale(task, lr_scale(step, run.steps, run.lr_rampdown))
                scalars.add(task.train_step(next(batches), step))
                stopping = world.any(stop.received is not None)
                if step % run.log_every == 0 or step == run.steps:
                    means = world.mean(scalars.flush())
                    check_finite_scalars(means, step, last_saved)
                    counters = world.total(batches_counters(batches))
                    if writer is not None:
                        for key, value in {**means, **counters}.items():
                            writer.add_scalar(key, value, step)
                        writer.add_scalar("speed/steps_per_second",
                                          (step - start_step) / (time.perf_counter() - started), step)
                    shown = {key: f"{value:.3f}" for key, value in means.items()}
                    shown.update({key: int(value) for key, value in counters.items() if value})
                    progress.set_postfix({key.split("/")[-1]: value for key, value in shown.items()})
                if writer is not None and (step % run.image_every == 0 or step == run.steps):
                    write_images(writer, task, fixed, step)
                if step % run.ckpt_every == 0 or step == run.steps or stopping:
                    check_finite_weights(task, step, last_saved)
                    checkpoint = Checkpoint(kind, run, task.config, step, task.state_dict(), rng_state(),
                                            batches.state_dict())
                    save_agreed(checkpoint, run_dir, run.keep, world)
                    last_saved = step
                # after the save, so that a failed evaluation loses no steps
                if step % run.eval_every == 0 or step == run.steps:
                    evaluate_agreed(task, evaluate, writer, run_dir, step, last_saved)
                if stopping:
                    break
        finally:  # also when a stop raises: the logged values that explain it reach the disk
            progress.close()
            if writer is not None:
                writer.close()
        for name, net in task.networks().items():
            world.check_identical(net, name)
        if world.is_main:
            final = to_uint8(draw_samples(task, 64, run.seed + 1, device))
            with write_errors_stop("samples.png", run_dir, kept_state(last_saved)):
                save_grid(run_dir / "samples.png", final)
    stopped_by = (stop.received or "a signal to another rank") if stopping else None
    return Outcome(run_dir / CHECKPOINT_NAME, step, stopped_by)


def on_rank_0_agreed(world: World, action: Callable[[], None], caught: type[Exception],
                     elsewhere: str) -> None:
    """Run `action` on rank 0 while the other ranks wait in a host-side (gloo) collective; a
    `caught` error there stops every rank: rank 0 re-raises it with its traceback, the others
    raise RunStopped(`elsewhere`)."""
    failure = None
    if world.is_main:
        try:
            action()
        except caught as error:
            failure = error
    if world.any(failure is not None):
        raise failure or RunStopped(elsewhere)


def evaluate_agreed(task: Task, evaluate: Callable[[Task], dict] | None, writer, run_dir: Path, step: int,
                    last_saved: int | None) -> None:
    """Rank 0 measures the task (when it has an `evaluate`) and writes the metrics; the other
    ranks wait on the host, not in the next step's gradient all-reduce, where NCCL's watchdog
    would end the job during a long FID (gloo's own limit is 30 minutes)."""

    def measure() -> None:
        if evaluate is None:
            return
        metrics = evaluate(task)
        for key, value in flatten_metrics(metrics).items():
            writer.add_scalar(f"metrics/{key}", value, step)
        for key, value in metrics.items():  # a metric that could not be measured, and why
            if key.endswith("_unavailable"):
                writer.add_text(f"metrics/{key}", str(value), step)
        with write_errors_stop(f"the step {step} metrics", run_dir, kept_state(last_saved)):
            save_metrics(run_dir / f"metrics-{step:07d}.json", metrics)
            save_metrics(run_dir / "metrics.json", {"step": step, **metrics})

    on_rank_0_agreed(task.world, measure, Exception,
                     f"rank 0's step {step} evaluation failed; {kept_state(last_saved)}")


def save_agreed(checkpoint: Checkpoint, run_dir: Path, keep: int | None, world: World) -> None:
    """Rank 0 saves; every rank learns whether it could, so a failed save stops them all."""
    on_rank_0_agreed(world, lambda: save_checkpoint(checkpoint, run_dir, keep), RunStopped,
                     f"rank 0 could not write the step {checkpoint.step} checkpoint")


def batches_counters(batches) -> dict[str, float]:
    """Counters a batch stream keeps (records it skipped), for TensorBoard."""
    counters = getattr(batches, "counters", None)
    return counters() if counters is not None else {}


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
