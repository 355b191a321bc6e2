"""Starting, resuming and re-loading training runs of any model family.

This is what the command line calls to train: it builds the run's data and task, restores
everything a checkpoint holds, and hands both to the shared loop (gen.training). Loading a
trained task to sample from is gen.checkpoint.load_task.
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import os
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from gen.checkpoint import CHECKPOINT_NAME, load_latest_good, snapshots
from gen.configs import RESUMABLE_FIELDS, RunConfig, given
from gen.data.batches import LoaderBatches, RunDataset, TensorBatches, run_dataset
from gen.devices import resolve_device
from gen.distributed import World, init_world, synchronise_batch_norm
from gen.errors import InputError
from gen.families import build_task
from gen.gan.config import GANConfig
from gen.images import to_uint8
from gen.metrics.coverage import evaluate_samples
from gen.speed import apply_fast_paths
from gen.task import Task, draw_samples
from gen.training import Outcome, seed_everything, set_rng_state, train
from gen.vae.config import VAEConfig


def default_run_dir(kind: str, tag: str = "") -> Path:
    """runs/<kind>[-<tag>]-<date>-<time>: a new folder per run, sorted by when it started."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{kind}{'-' + tag if tag else ''}-{stamp}"


def evaluator(data: RunDataset, run: RunConfig, device: torch.device,
              world: World) -> tuple[Callable[[Task], dict] | None, tuple[str, ...]]:
    """What rank 0 measures at evaluation steps, and warnings to show as the run starts: for
    Not-so-Clevr data the geometric metrics of samples (plus the task's own on the held-out
    part of a split); for natural images FID and its companions against the run's own data
    (`fid_samples` of each; 0: none)."""
    if not world.is_main:
        return None, ()
    if data.geometry is None:
        count = fid_count(run, device)
        return fidelity_evaluator(run, count, device) if count else (None, ())
    held_out = data.held_out()

    def evaluate(task: Task) -> dict:
        samples = draw_samples(task, run.eval_samples, run.seed + 2, device)
        metrics = evaluate_samples(samples, dataset=data.geometry, seed=run.seed, value_range=(-1.0, 1.0))
        if held_out is not None:
            metrics.update(task.held_out_metrics(held_out, device))
        return metrics

    return evaluate, ()


def fid_count(run: RunConfig, device: torch.device) -> int:
    """Samples a natural-image run's FID measures: as set, else 5000 on GPUs and 1000 on the
    CPU (where Inception-v3 measures about 8 images/s)."""
    if run.fid_samples is not None:
        return run.fid_samples
    return 5000 if device.type == "cuda" else 1000


def fidelity_evaluator(run: RunConfig, count: int,
                       device: torch.device) -> tuple[Callable[[Task], dict], tuple[str, ...]]:
    """FID, KID, precision/recall and density/coverage of samples against a seeded subset of
    the run's data. The Inception weights are loaded now: a weights file that was named but
    does not load, or FID asked for with --fid-samples, stops the start; with neither, a
    machine that cannot download them (offline, as compute nodes often are) trains without
    FID, says so once, and records FID as unavailable with the reason."""
    from gen.data.image_sets import open_image_set
    from gen.metrics.fidelity import WEIGHTS_ENV, Inception, measure

    reference = open_image_set(run.root, run.resolution, run.data)
    named = run.inception_weights is not None or os.environ.get(WEIGHTS_ENV)
    try:
        inception = Inception(run.inception_weights, device)
    except InputError as error:
        if named or run.fid_samples is not None:
            raise InputError(f"{error}; or train without FID: --fid-samples 0") from None
        reason = str(error)
        warning = (f"FID is off for this run: {reason.split('; pass')[0]}. Turn it on with "
                   f"--inception-weights FILE or {WEIGHTS_ENV}=FILE (torch-fidelity's Inception-v3 "
                   "weights), or silence this with --fid-samples 0")
        return (lambda task: {"fid": None, "fid_unavailable": reason}), (warning,)

    def evaluate(task: Task) -> dict:
        samples = to_uint8(draw_samples(task, count, run.seed + 2, device))
        return measure(samples, reference, inception, count, run.seed)

    return evaluate, ()


def configure_task(task: Task, world: World, run: RunConfig, device: torch.device) -> None:
    """Make the task one rank of the run's world (with --sync-bn its BatchNorm layers use
    the global batch's statistics) and set its fast paths (gen.speed)."""
    task.world = world
    if run.sync_bn and world.size > 1:
        for network in task.networks().values():
            synchronise_batch_norm(network)
    apply_fast_paths(task, run, device)


def check_writable(run_dir: Path) -> None:
    """InputError unless files can be written in run_dir (made if missing): found at the
    start rather than at the first checkpoint, minutes in."""
    existed = run_dir.is_dir()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=run_dir):
            pass
    except OSError as error:
        if not existed and run_dir.is_dir():
            run_dir.rmdir()
        raise InputError(f"cannot write in the run directory {run_dir} ({error.strerror or error})") from None


class RunLock:
    """An exclusive lock on a run directory, so two processes never write one run: a second
    writer is refused at once. The kernel drops it when the process ends, however it ends,
    so a crashed run's lock never blocks its resume."""

    NAME = "run.lock"

    def __init__(self, run_dir: Path) -> None:
        path = run_dir / self.NAME
        self.file = open(path, "a+")  # noqa: SIM115 (held open for the run's life)
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise InputError(f"{run_dir} is being written by {holder}; wait for it to end or stop it "
                             "(one writer at a time)") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"process {os.getpid()} on {socket.gethostname()}")
        self.file.flush()

    def release(self) -> None:
        if not self.file.closed:
            fcntl.flock(self.file, fcntl.LOCK_UN)
            self.file.close()


@dataclass
class PreparedRun:
    """A run with its data, task and state built and checked: bad input has been reported
    before anything is written (the run directory is only probed, and a resume's
    unreadable checkpoints set aside)."""

    task: Task
    run: RunConfig
    batches: TensorBatches | LoaderBatches
    run_dir: Path
    device: torch.device
    start_step: int
    evaluate: Callable[[Task], dict] | None
    passed_over: tuple[tuple[Path, str], ...] = ()  # unreadable checkpoints a resume fell back past, why
    warnings: tuple[str, ...] = ()  # for the user as the run starts (rank 0)
    lock: RunLock | None = None  # rank 0's hold on the run directory, from ready() to the end of train()
    seen: tuple[tuple[str, int, int], ...] = ()  # saved_state when the run was prepared

    def train(self) -> Outcome:
        """Train to `run.steps` (or until a stop signal)."""
        try:
            return train(self.task, self.run, self.batches, self.run_dir, self.device, self.start_step,
                         self.evaluate)
        finally:
            if self.lock is not None:
                self.lock.release()


def prepare_start(run: RunConfig, model: GANConfig | VAEConfig, run_dir: str | os.PathLike) -> PreparedRun:
    """A new run in run_dir (which must not hold a checkpoint yet), the model sized for the
    run's data."""
    run_dir = Path(run_dir)
    seen = saved_state(run_dir)
    if (run_dir / CHECKPOINT_NAME).exists() or snapshots(run_dir):
        raise InputError(f"{run_dir} already holds a run; use --resume {run_dir} to continue it")
    if (run_dir / "config.json").exists():
        raise InputError(f"{run_dir} already holds a run that saved no checkpoint; choose another --out "
                         "or remove it")
    world, device = init_world(resolve_device(run.device))
    seed_everything(run.seed)
    data = run_dataset(run, device)
    task = build_task(model.for_data(data.channels, run.resolution), device, run.seed)
    configure_task(task, world, run, device)
    batches = data.batches(run.batch_size, run.seed, run.workers, device, world)
    evaluate, warnings = evaluator(data, run, device, world)
    return ready(PreparedRun(task, run, batches, run_dir, device, 0, evaluate, warnings=warnings, seen=seen))


def prepare_resume(run_dir: str | os.PathLike, kind: str | None = None, **changes: object) -> PreparedRun:
    """The run in run_dir restored from its latest readable checkpoint; `changes` set the
    run settings a resume may change (RESUMABLE_FIELDS: a larger total of steps, another device,
    snapshots kept, evaluation; None keeps the saved value); `kind` (gan, vae), when
    given, must be the run's."""
    run_dir = Path(run_dir)
    unknown = set(changes) - set(RESUMABLE_FIELDS)
    if unknown:
        raise InputError(f"a resume continues the saved config; cannot change {', '.join(sorted(unknown))}")
    seen = saved_state(run_dir)
    checkpoint, skipped = load_latest_good(run_dir)
    if kind is not None and checkpoint.kind != kind:
        raise InputError(f"{run_dir} holds a {checkpoint.kind} run; continue it with "
                         f"gen train {checkpoint.kind} --resume {run_dir}")
    steps = changes.get("steps")
    if steps is not None and steps <= checkpoint.step:
        raise InputError(f"--steps {steps} is not past the checkpoint's step {checkpoint.step}")
    run = dataclasses.replace(checkpoint.run, **given(changes))
    world, device = init_world(resolve_device(run.device))
    data = run_dataset(run, device)
    task = build_task(checkpoint.model, device, run.seed)
    task.load_state_dict(checkpoint.task)
    configure_task(task, world, run, device)
    batches = data.batches(run.batch_size, run.seed, run.workers, device, world)
    batches.load_state_dict(checkpoint.data)
    set_rng_state(checkpoint.rng)
    evaluate, warnings = evaluator(data, run, device, world)
    return ready(PreparedRun(task, run, batches, run_dir, device, checkpoint.step, evaluate, tuple(skipped),
                             warnings, seen=seen))


def saved_state(run_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """What a run directory holds of a run (checkpoints, config): names, times and sizes, to
    tell whether another process wrote it between two looks."""
    paths = [run_dir / CHECKPOINT_NAME, run_dir / "config.json", *snapshots(run_dir)]
    stats = [(path.name, path.stat()) for path in paths if path.is_file()]
    return tuple((name, stat.st_mtime_ns, stat.st_size) for name, stat in stats)


def ready(prepared: PreparedRun) -> PreparedRun:
    """Rank 0 probes the run directory and sets the unreadable checkpoints a resume passed
    over aside (NAME.unreadable: kept, but out of the snapshot rotation and of later
    resumes); then every rank waits until all are prepared, so none writes before another
    has checked the directory."""
    world = prepared.task.world
    if world.is_main:
        check_writable(prepared.run_dir)
        prepared.lock = RunLock(prepared.run_dir)
        if saved_state(prepared.run_dir) != prepared.seen:
            prepared.lock.release()
            raise InputError(f"{prepared.run_dir} changed while this run was starting (another process wrote "
                             "it and has ended); run the command again")
        for path, _ in prepared.passed_over:
            path.rename(path.with_name(path.name + ".unreadable"))
    world.any(False)
    return prepared


def start(run: RunConfig, model: GANConfig | VAEConfig, run_dir: str | os.PathLike) -> Path:
    """Train a new run in run_dir; returns its latest checkpoint's path."""
    return prepare_start(run, model, run_dir).train().checkpoint


def resume(run_dir: str | os.PathLike, **changes: object) -> Path:
    """Continue a run from its latest checkpoint (changing RESUMABLE_FIELDS settings); returns the
    latest checkpoint's path."""
    return prepare_resume(run_dir, **changes).train().checkpoint
