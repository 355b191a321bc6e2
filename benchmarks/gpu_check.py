"""The prepared device check: every GPU measurement the docs need, in one command.

Runs each part as a process of its own under its own time limit (limits summing to under 8
minutes on one GPU), so a part that fails or overruns does not stop the rest, and writes every
number to JSON files under one folder (`--out`, default $OUT where set, else runs/gpu-check),
each naming the device:

- cuda-tests: the tests marked `cuda` (they skip without a GPU).
- reference-*: gen's DCGAN step against the pytorch/examples loop: fp32; bf16 + channels_last;
  bf16 + channels_last + torch.compile.
- coordconv-layers: CoordConv's cost per layer of the DCGAN at the presets' widths (8, 16) and
  at 64, in both forms (position bias, concatenation).
- coordconv-model: CoordConv in every layer of the DCGAN, in each form, against the plain
  DCGAN, at the widths the presets train (8, 16) and at 64.
- scaling: bench_scaling on one process.
- round-trip: train -> SIGTERM -> resume -> sample -> interpolate -> metrics, on the device.
- fid-throughput: Inception-v3 features per second (a randomly initialised network: the
  weights do not change the compute).
- jobs-*: total images/s of N small training runs at once on the one device.
- experiment: `gen experiment run paper-generators --seeds 0,1,2 --rows squares-... --jobs 6`.

`--smoke` runs every part but reference-compile on the CPU at tiny sizes (the default test
run does, to keep this script working where there is no GPU); `--device cpu` runs the full
sizes on the CPU. Commit the folder under results/benchmarks/ and `gen experiment report`
renders docs/benchmarks.md.

Usage: python benchmarks/gpu_check.py [--out DIR] [--device cuda] [--smoke] [--parts a,b]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
JOB_COUNTS = (1, 4, 8, 16)
SQUARES_ROWS = "squares-tiled,squares-dcgan-same-images,squares-dcgan-same-wall"


@dataclass(frozen=True)
class Part:
    name: str
    limit_s: int  # on the GPU; smoke runs get SMOKE_LIMIT_S
    command: list[str]


SMOKE_LIMIT_S = 120
CPU_SLOWER = 10  # the full sizes on the CPU (--device cpu) get this many times the GPU's limits


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def part_threads(device: str, smoke: bool) -> int:
    """Intra-op threads of the benchmark parts: one each in a smoke run (they overlap), a few
    beside a GPU, every core for full sizes on the CPU."""
    return 1 if smoke else 4 if device == "cuda" else os.cpu_count() or 1


def parts(device: str, smoke: bool, out: Path) -> list[Part]:
    """Every part's command: full sizes on the device, or tiny ones on the CPU (--smoke)."""
    tiny = smoke
    threads = part_threads(device, smoke)
    reference = ["--device", device, "--threads", str(threads)]
    reference += ["--steps", "1", "--repeats", "1"] if tiny else ["--steps", "10", "--repeats", "5"]
    made = [
        Part(
            "cuda-tests",
            45,
            python(
                "-m",
                "pytest",
                "-q",
                "-m",
                "cuda",
                str(REPO / "tests" / "test_cuda.py"),
                "-o",
                "addopts=",
                "-p",
                "no:cacheprovider",
            ),
        ),
        *(Part(name, limit, python(str(BENCHMARKS / "bench_reference.py"), *reference, "--parts", "reference",
                                   "--widths", "4" if tiny else "64", *fast))
          for name, limit, fast in (
              ("reference-fp32", 25, []),
              ("reference-bf16-channels-last", 25, ["--bf16", "--channels-last"]),
              # compiling alone outlasts a whole smoke run, which leaves this part out
              *([] if tiny else [("reference-compile", 45, ["--bf16", "--channels-last", "--compile"])]),
          )),
        Part(
            "coordconv-layers",
            30,
            python(
                str(BENCHMARKS / "bench_coordconv.py"),
                "--device",
                device,
                "--threads",
                str(threads),
                *(["--widths", "4", "--batch", "2", "--calls", "1", "--repeats", "1"] if tiny else []),
            ),
        ),
    ]
    made.append(
        Part(
            "coordconv-model",
            45,
            python(str(BENCHMARKS / "bench_reference.py"), *reference, "--parts", "coordconv",
                   "--widths", "4" if tiny else "8,16,64"),
        )
    )
    made.append(
        Part(
            "scaling",
            25,
            python(
                str(BENCHMARKS / "bench_scaling.py"),
                "--processes",
                "1",
                "--device",
                device,
                *(["--steps", "1", "--repeats", "1", "--width", "4", "--batch-size", "8"] if tiny else []),
            ),
        )
    )
    made.append(
        Part(
            "round-trip",
            45,
            python(__file__, "--round-trip", "--device", device, "--out", str(out / "round-trip")),
        )
    )
    made.append(
        Part(
            "fid-throughput",
            20,
            python(__file__, "--fid-throughput", "--device", device, *(["--smoke"] if tiny else [])),
        )
    )
    for jobs in (2,) if tiny else JOB_COUNTS:
        made.append(
            Part(
                f"jobs-{jobs}",
                20,
                python(
                    __file__,
                    "--jobs-throughput",
                    str(jobs),
                    "--device",
                    device,
                    "--out",
                    str(out / f"jobs-{jobs}"),
                    *(["--smoke"] if tiny else []),
                ),
            )
        )
    experiment = [
        "-m",
        "gen",
        "experiment",
        "run",
        "paper-generators",
        "--device",
        device,
        "--out",
        str(out / "results" / "paper-generators"),
    ]
    experiment += (
        ["--seeds", "0", "--rows", "squares-dcgan-same-images", "--steps", "1", "--jobs", "1"]
        if tiny
        else ["--seeds", "0,1,2", "--rows", SQUARES_ROWS, "--jobs", "6"]
    )
    made.append(Part("experiment", 90, python(*experiment)))
    return made


def markdown_tables(text: str) -> list[list[dict[str, str]]]:
    """Every markdown table printed in `text`, as rows of {column: cell}."""
    tables, header = [], None
    for line in text.splitlines():
        cells = (
            [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else None
        )
        if cells is None:
            header = None
        elif header is None:
            if len(set(cells)) < len(cells):  # rows are {column: cell}: a repeated name loses cells
                raise ValueError(f"a table repeats a column name: {line.strip()}")
            header = cells
            tables.append([])
        elif not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
            tables[-1].append(dict(zip(header, cells)))
    return tables


def run_part(part: Part, limit: int, out: Path, context: dict, env: dict[str, str] | None = None) -> dict:
    """Run one part under its limit (in `env`, default this process's); write and return its record."""
    start = time.perf_counter()
    # A process group of its own, so a part that overruns is stopped with every process it started.
    process = subprocess.Popen(part.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=REPO, start_new_session=True, env=env)
    try:
        stdout, stderr = process.communicate(timeout=limit)
        returncode, timed_out = process.returncode, False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        returncode, timed_out = None, True
    record = {
        **context,
        "part": part.name,
        "command": part.command,
        "limit_s": limit,
        "wall_s": round(time.perf_counter() - start, 1),
        "returncode": returncode,
        "timed_out": timed_out,
        "stdout_tail": stdout[-4000:],
        "stderr_tail": stderr[-4000:],
    }
    try:
        record["tables"] = markdown_tables(stdout)
    except ValueError as error:  # the part's output is kept whole in stdout_tail
        record["tables"], record["tables_error"] = [], str(error)
    json_lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if json_lines:
        try:
            record["measured"] = json.loads(json_lines[-1])
        except json.JSONDecodeError:
            record["measured_unreadable"] = json_lines[-1]
    (out / f"{part.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def round_trip(device: str, out: Path) -> None:
    """train -> SIGTERM -> resume -> sample -> interpolate -> metrics on the device."""
    run = out / "run"
    tiny = [
        "--g-width",
        "4",
        "--d-width",
        "4",
        "--latent-dim",
        "8",
        "--batch-size",
        "8",
        "--eval-every",
        "100000",
        "--eval-samples",
        "64",
        "--device",
        device,
    ]
    gen = python("-m", "gen")
    process = subprocess.Popen(
        [*gen, "train", "gan", *tiny, "--steps", "100000", "--out", str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    deadline = time.monotonic() + 120
    while not (run / "config.json").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"training did not start: {process.communicate()[1][-2000:]}")
        time.sleep(0.05)
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    stopped_out, stopped_err = process.communicate(timeout=120)
    steps = {"stopped": process.returncode}
    commands = {
        "resume": [*gen, "train", "gan", "--resume", str(run), "--steps", "STEPS", "--device", device],
        "sample": [
            *gen,
            "sample",
            str(run),
            "--n",
            "16",
            "--out",
            str(out / "samples.png"),
            "--device",
            device,
        ],
        "interpolate": [
            *gen,
            "interpolate",
            str(run),
            "--out",
            str(out / "paths.gif"),
            "--grid",
            "2x2",
            "--frames-per-segment",
            "4",
            "--device",
            device,
        ],
        "metrics": [
            *gen,
            "metrics",
            "coverage",
            str(run),
            "--n",
            "256",
            "--json",
            str(out / "coverage.json"),
            "--device",
            device,
        ],
    }
    stopped_at = re.search(r"after step (\d+)", stopped_out)
    resume = commands.pop("resume")
    if stopped_at is None:
        raise SystemExit(f"SIGTERM did not stop the run with a saved step: {stopped_err[-2000:]}")
    resume[resume.index("--steps") + 1] = str(int(stopped_at[1]) + 3)  # a few steps past the saved one
    steps["resumed"] = subprocess.run(resume, capture_output=True, text=True, cwd=REPO).returncode
    readers = {name: subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
               for name, command in commands.items()}  # each only reads the run: side by side
    steps.update({name: process.wait() for name, process in readers.items()})
    print(json.dumps({"returncodes": steps, "stopped_says": stopped_out.strip().splitlines()[-1:]}))
    if any(code != 0 for code in steps.values()):
        raise SystemExit(f"round trip failed: {steps}; {stopped_err[-1000:]}")


def fid_throughput(device: str, smoke: bool) -> None:
    """Inception-v3 features per second on uint8 64 x 64 images, random weights."""
    from unittest import mock

    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as inception_v3

    with (
        mock.patch.object(inception_v3.FeatureExtractorInceptionV3, "load_state_dict", lambda *args: None),
        mock.patch.object(inception_v3, "load_state_dict_from_url", lambda *args, **kwargs: {}),
    ):
        network = inception_v3.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]).to(device).eval()
    batch, rounds = (4, 1) if smoke else (200, 5)
    images = torch.randint(0, 256, (batch, 3, 64, 64), dtype=torch.uint8, device=device)
    with torch.no_grad():
        network(images)
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(rounds):
            network(images)
        if device == "cuda":
            torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(json.dumps({"images_per_s": round(batch * rounds / seconds, 1), "batch": batch}))


def jobs_throughput(jobs: int, device: str, out: Path, smoke: bool) -> None:
    """Total images/s of `jobs` DCGAN runs at once on the one device (the presets' sizes)."""
    steps, batch = (2, 4) if smoke else (400, 32)
    commands = [
        python(
            "-m",
            "gen",
            "train",
            "gan",
            "--steps",
            str(steps),
            "--batch-size",
            str(batch),
            "--eval-every",
            "100000",
            "--ckpt-every",
            "100000",
            "--seed",
            str(index),
            "--device",
            device,
            "--out",
            str(out / f"run{index}"),
        )
        for index in range(jobs)
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    processes = [
        subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
        )
        for command in commands
    ]
    errors = [process.communicate()[1] for process in processes]
    failed = [error[-500:] for process, error in zip(processes, errors) if process.returncode != 0]
    seconds = time.perf_counter() - start
    if failed:
        raise SystemExit(f"{len(failed)} of {jobs} runs failed: {failed[0]}")
    print(
        json.dumps(
            {
                "jobs": jobs,
                "images_per_s": round(jobs * steps * batch / seconds, 1),
                "wall_s": round(seconds, 1),
                "steps": steps,
                "batch": batch,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "runs/gpu-check"))
    parser.add_argument("--device", default=None, help="[default: cpu with --smoke, else cuda]")
    parser.add_argument("--smoke", action="store_true",
                        help="Every part but reference-compile on the CPU at tiny sizes.")
    parser.add_argument("--parts", default=None, help="Comma-separated parts [default: all].")
    parser.add_argument("--round-trip", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fid-throughput", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--jobs-throughput", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = args.device or ("cpu" if args.smoke else "cuda")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.round_trip:
        return round_trip(device, out)
    if args.fid_throughput:
        return fid_throughput(device, args.smoke)
    if args.jobs_throughput is not None:
        return jobs_throughput(args.jobs_throughput, device, out, args.smoke)

    import torch

    if device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device is visible; use --smoke for the CPU check")
    chosen = parts(device, args.smoke, out)
    if args.parts is not None:
        names = args.parts.split(",")
        if unknown := set(names) - {part.name for part in chosen}:
            parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(p.name for p in chosen)}")
        chosen = [part for part in chosen if part.name in names]
    from gen.experiments.runner import commit, machine

    hardware = machine(device, part_threads(device, args.smoke))
    context = {
        "device": hardware["gpu"] or hardware["cpu"],
        "device_kind": device,
        "machine": hardware,
        **commit(("gen", "pyproject.toml", "benchmarks")),
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "smoke": args.smoke,
    }
    summary: list[dict] = []
    lock = threading.Lock()
    # Smoke parts overlap: one thread each, so they share the cores without oversubscribing them.
    smoke_env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def one(part: Part) -> None:
        try:
            limit = SMOKE_LIMIT_S if args.smoke else part.limit_s * (1 if device == "cuda" else CPU_SLOWER)
            record = run_part(part, limit, out, context, smoke_env if args.smoke else None)
            status = "timed out" if record["timed_out"] else f"exit {record['returncode']}"
            wall = record["wall_s"]
        except Exception as error:  # noqa: BLE001 (a part's failure must not stop the others)
            status, wall = f"failed: {type(error).__name__}: {error}", None
        print(f"{part.name}: {status} in {wall} s", flush=True)
        with lock:  # the summary is rewritten after every part: a check cut short keeps what it has
            summary.append({"part": part.name, "status": status, "wall_s": wall})
            order = [part.name for part in chosen]
            summary.sort(key=lambda item: order.index(item["part"]))
            (out / "summary.json").write_text(json.dumps({**context, "parts": summary}, indent=2) + "\n")

    # On the device, one part at a time so timings are each part's own; a smoke run only
    # checks that every part works, so it overlaps them, the longest (by limit) first.
    with ThreadPoolExecutor(max_workers=4 if args.smoke else 1) as pool:
        list(pool.map(one, sorted(chosen, key=lambda part: -part.limit_s) if args.smoke else chosen))
    if any(item["status"] != "exit 0" for item in summary):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
