"""Run an experiment's rows over seeds, one result file per run.

Each run is the row's command as a user types it, with the runner's `--seed`, `--out` and
`--device` added, in a process of its own; then, for models of squares or shapes, the
interpolation score, a sample grid and a position heat map, each through the command line
too. A run whose result file exists is skipped, so an interrupted experiment continues where
it stopped; a run directory left by an interrupted run is resumed from its checkpoint.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gen.configs import GENERATED_SOURCES
from gen.errors import InputError
from gen.experiments import Experiment, Row
from gen.fileio import save_json

RESULTS = Path("results")
RUNS = Path("runs/experiments")


@dataclass(frozen=True)
class Plan:
    """Where and how an experiment runs: its seeds, device, parallel jobs and the intra-op
    threads each gets, and an optional step count replacing every training row's (a smoke run,
    whose results go outside results/ so they never mix with the committed ones)."""

    experiment: Experiment
    seeds: tuple[int, ...]
    device: str = "cpu"
    jobs: int = 1
    threads: int = 1
    steps: int | None = None
    out: Path | None = None

    @property
    def results(self) -> Path:
        if self.out is not None:
            return self.out
        if self.steps is not None:
            return RUNS / f"{self.experiment.name}-steps{self.steps}" / "results"
        return RESULTS / self.experiment.name

    @property
    def run_root(self) -> Path:
        """Where the runs' directories go: runs/experiments/NAME[-stepsN], or beside --out's
        results (OUT/runs), so different result folders never share a run."""
        if self.out is not None:
            return self.out / "runs"
        suffix = f"-steps{self.steps}" if self.steps is not None else ""
        return RUNS / f"{self.experiment.name}{suffix}"


def result_path(results: Path, row: Row, seed: int) -> Path:
    return results / f"{row.name}-seed{seed}.json"


def check_result(path: Path, record: dict, row: Row, seed: int, steps: int | None) -> None:
    """InputError when a result file is not this row's at this seed, as defined now: a row
    whose command changed must be run again, not reported with the old numbers."""
    made = (record["row"], record["seed"], record.get("row_command"), record.get("steps_override"))
    if made != (row.name, seed, row.command, steps):
        raise InputError(f"{path} was made by `{record.get('row_command')}` (row {record['row']}, seed "
                         f"{record['seed']}, steps override {record.get('steps_override')}), not by row "
                         f"{row.name}'s `{row.command}`; delete it to run the row again")


def read_result(path: Path) -> dict:
    """A result file's record; InputError naming the file when it does not parse."""
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: not a readable result file ({error})") from None
    if not isinstance(record, dict) or not {"row", "seed", "metrics"} <= set(record):
        raise InputError(f"{path}: not a result file (it lacks row, seed or metrics)")
    return record


def default_threads(device: str, jobs: int) -> int:
    """Intra-op threads per run: the CPU's cores shared by the jobs, or 1 per run on a GPU."""
    if device == "cuda":
        return 1
    return max(1, (os.cpu_count() or 1) // jobs)


def machine(device: str, threads: int) -> dict:
    """What ran the runs: CPU (and GPU) model, torch and Python versions, threads."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if device == "cuda" and torch.cuda.is_available() else None
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "gpu": gpu, "torch": torch.__version__,
            "python": platform.python_version(), "threads": threads}


def commit(paths: tuple[str, ...] = ("gen", "pyproject.toml")) -> dict:
    """The checkout's commit, and whether `paths` differed from it (uncommitted changes; None
    where git cannot say, as in a copy without its history)."""
    checkout = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=checkout, capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            return None
        return done.stdout.strip()

    status = git("status", "--porcelain", "--", *paths)
    return {"commit": git("rev-parse", "--short=10", "HEAD"),
            "library_modified": None if status is None else bool(status)}


def speed_reference(device: str, threads: int) -> float:
    """The speed reference's median step (gen.speed_reference) on this machine now."""
    import torch

    from gen.speed_reference import step_seconds

    torch.set_num_threads(threads)
    return round(statistics.median(step_seconds(steps=5, warmup=2, device=torch.device(device))), 4)


def gen_process(argv: list[str], threads: int) -> subprocess.CompletedProcess:
    """`python -m gen ARGV` with `threads` intra-op threads."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return subprocess.run([sys.executable, "-m", "gen", *argv], env=env, capture_output=True, text=True)


class RunFailed(RuntimeError):
    """A row's command failed: its command line and the end of what it printed."""


def checked(argv: list[str], threads: int) -> subprocess.CompletedProcess:
    done = gen_process(argv, threads)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise RunFailed(f"gen {' '.join(argv)} exited {done.returncode}:\n{tail}")
    return done


def with_steps(argv: list[str], steps: int) -> list[str]:
    """The arguments with `--steps` set to `steps` (replaced where given, else added)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--steps":
            skip = True
            continue
        if arg.startswith("--steps="):
            continue
        out.append(arg)
    return [*out, "--steps", str(steps)]


def run_one(plan: Plan, row: Row, seed: int, context: dict) -> dict:
    """Train (or toy-train) one row at one seed and measure it; the result record."""
    results = plan.results
    argv = row.argv
    if plan.steps is not None and row.kind != "toy":
        argv = with_steps(argv, plan.steps)
    run_dir = plan.run_root / f"{row.name}-seed{seed}"
    record: dict = {"experiment": plan.experiment.name, "row": row.name, "seed": seed,
                    "row_command": row.command, "steps_override": plan.steps, **context}
    start = time.perf_counter()
    if row.kind == "toy":
        toy_json = run_dir / "toy.json"
        command = [*argv, "--seed", str(seed), "--device", plan.device, "--json", str(toy_json), "--quiet"]
        run_dir.mkdir(parents=True, exist_ok=True)
        checked(command, plan.threads)
        record["wall_s"] = round(time.perf_counter() - start, 1)
        toy = json.loads(toy_json.read_text())
        metric = next(key.removeprefix("train_") for key in toy if key.startswith("train_"))
        metrics = {"metric": metric, "train": toy[f"train_{metric}"], "test": toy[f"test_{metric}"],
                   "params": toy["params"], "seconds": toy["seconds"]}
        record.update(command="gen " + " ".join(command), config=toy, metrics=metrics, score=None)
        return record
    command = [*argv, "--seed", str(seed), "--out", str(run_dir), "--device", plan.device]
    made_by = run_dir / "experiment-run.json"  # the command that made the directory
    if (run_dir / "checkpoint.pt").is_file():
        if not made_by.is_file() or json.loads(made_by.read_text())["command"] != command:
            raise InputError(f"{run_dir} holds a run of another command than `gen {' '.join(command)}`; "
                             "move it away to run the row again")
        resume = ["train", row.kind, "--resume", str(run_dir), "--device", plan.device]
        record["resumed_with"] = "gen " + " ".join(resume)  # wall_s then counts the resumed part only
        checked(resume, plan.threads)
    else:
        if run_dir.exists():  # a start that saved nothing: nothing in it to keep
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        made_by.write_text(json.dumps({"command": command}) + "\n")
        checked(command, plan.threads)
    record["wall_s"] = round(time.perf_counter() - start, 1)
    config = json.loads((run_dir / "config.json").read_text())
    metrics_file = run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    if metrics.get("step") != config["run"]["steps"]:  # stopped (a signal) before its last step
        raise RunFailed(f"gen {' '.join(command)} stopped before its last step ({config['run']['steps']}); "
                        "rerun the experiment to continue it")
    record.update(command="gen " + " ".join(command), config=config, metrics=metrics, score=None)
    if config["run"]["data"] not in GENERATED_SOURCES:
        return record
    score_json = run_dir / "interpolation-score.json"
    # A smoke run checks that every step runs: a few paths and samples are enough for that.
    paths, coverage_samples = ((plan.experiment.paths, 1000) if plan.steps is None
                               else (min(4, plan.experiment.paths), 100))
    score = ["interpolate", str(run_dir), "--score", "--paths", str(paths), "--json",
             str(score_json), "--device", plan.device]
    if row.kind == "vae":  # paths between encodings of real images: a VAE's prior samples can be poor
        score += ["--endpoints", "data"]
    scored = gen_process(score, plan.threads)
    reason = scored.stderr.strip().splitlines()[-1].removeprefix("Error: ") if scored.stderr.strip() else ""
    if scored.returncode == 2 and "valid path endpoints" in reason:  # too few valid samples to score
        record["score_error"] = reason
    elif scored.returncode != 0:
        checked(score, plan.threads)
    else:
        record["score"] = json.loads(score_json.read_text())["summary"]
    if plan.experiment.images:
        stem = results / f"{row.name}-seed{seed}"
        checked(["sample", str(run_dir), "--n", "16", "--nrow", "4", "--out", f"{stem}-samples.png",
                 "--device", plan.device], plan.threads)
        checked(["metrics", "coverage", str(run_dir), "--n", str(coverage_samples), "--heatmap",
                 f"{stem}-heatmap.png", "--device", plan.device], plan.threads)
    return record


def pending(plan: Plan) -> list[tuple[Row, int]]:
    """The (row, seed) runs without a result file; existing ones must parse."""
    todo = []
    for row in plan.experiment.rows:
        for seed in plan.seeds:
            path = result_path(plan.results, row, seed)
            if path.exists():
                check_result(path, read_result(path), row, seed, plan.steps)
            else:
                todo.append((row, seed))
    return todo


def run(plan: Plan, say: Callable[[str], None] = print) -> list[str]:
    """Run every pending (row, seed) of the plan, `plan.jobs` at a time; write each result as
    it finishes. Returns the failures (empty when every run succeeded)."""
    from gen.runs import RunLock

    plan.results.mkdir(parents=True, exist_ok=True)
    hold = RunLock(plan.results)  # one runner per results folder: never two writers of one run
    try:
        return run_locked(plan, say)
    finally:
        hold.release()


def run_locked(plan: Plan, say: Callable[[str], None]) -> list[str]:
    todo = pending(plan)
    done = len(plan.experiment.rows) * len(plan.seeds) - len(todo)
    say(f"{plan.experiment.name}: {len(todo)} runs to go, {done} already in {plan.results}")
    if not todo:
        return []
    context = {"machine": machine(plan.device, plan.threads), "jobs": plan.jobs, **commit(),
               # a smoke run (--steps) reads no wall times against the reference: not measured
               "speed_reference_s": None if plan.steps else speed_reference(plan.device, plan.threads)}
    lock = threading.Lock()
    failures: list[str] = []

    def one(row: Row, seed: int) -> None:
        started = datetime.datetime.now(datetime.timezone.utc)
        try:
            record = run_one(plan, row, seed, context)
        except RunFailed as error:
            with lock:
                failures.append(str(error))
                say(f"FAILED {row.name} seed {seed}: {error}")
            return
        record["date"] = started.isoformat(timespec="seconds")
        save_json(result_path(plan.results, row, seed), record)
        with lock:
            say(f"{row.name} seed {seed}: {record['wall_s'] / 60:.1f} min -> "
                f"{result_path(plan.results, row, seed)}")

    pool = ThreadPoolExecutor(max_workers=plan.jobs)
    futures = [pool.submit(one, row, seed) for row, seed in todo]
    try:
        for future in futures:
            future.result()
    except BaseException:  # Ctrl-C, bad input, a bug: start nothing more; runs under way end
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return failures
