"""The paper's toy tasks, conv vs CoordConv, with default settings: the README results table.

Runs each `gen toy` command one after another (never two at once, so timings are fair),
prints a markdown table with the command of every row, and checks the bar: the CoordConv
classifier reaches 100% test accuracy and the CoordConv renderer 0.99 test IOU on both
splits, each command in under 5 minutes. Exit status 1 when the bar is missed.

Usage: OMP_NUM_THREADS=1 python benchmarks/toy_tasks.py [--tasks classify,render] [--models coordconv]
       [--splits uniform] [--device cpu] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gen.fileio import save_json

TASKS = ("classify", "render", "regress")
METRIC = {"classify": "accuracy", "render": "iou", "regress": "error_px"}
BAR = {"classify": 1.0, "render": 0.99}  # CoordConv test metric at least this
TIME_LIMIT_S = 300.0
REPO = Path(__file__).resolve().parents[1]


def command(task: str, coordconv: bool, split: str, device: str) -> list[str]:
    return ["gen", "toy", task, *(["--coordconv"] if coordconv else []), "--split", split,
            "--device", device]


def run_row(task: str, coordconv: bool, split: str, device: str) -> dict:
    """Run one command end to end; add its whole wall time (process start included).

    It runs as `python -m gen` from this checkout, so the code measured is the code here
    even where the `gen` on PATH belongs to another install."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "row.json"
        start = time.perf_counter()
        args = command(task, coordconv, split, device)[1:]
        subprocess.run([sys.executable, "-m", "gen", *args, "--quiet", "--json", str(out)],
                       check=True, stdout=subprocess.DEVNULL, cwd=REPO)
        record = json.loads(out.read_text())
    record["command_seconds"] = round(time.perf_counter() - start, 1)
    return record


def fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} px" if metric == "error_px" else f"{100 * value:.1f}%" if metric == "accuracy" \
        else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--models", default="coordconv,conv")
    parser.add_argument("--splits", default="uniform,quadrant")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="Write every row's record here.")
    args = parser.parse_args()

    rows, failures = [], []
    print("| task | split | model | params | train | test | seconds | command |")
    print("|---|---|---|---:|---:|---:|---:|---|")
    for task in args.tasks.split(","):
        for split in args.splits.split(","):
            for model in args.models.split(","):
                coordconv = model == "coordconv"
                record = run_row(task, coordconv, split, args.device)
                rows.append(record)
                metric = METRIC[task]
                train, test = record[f"train_{metric}"], record[f"test_{metric}"]
                shown = " ".join(command(task, coordconv, split, args.device)[:-2])
                print(f"| {task} | {split} | {'CoordConv' if coordconv else 'conv'} "
                      f"({record['model']}) | {record['params']:,} | {fmt(train, metric)} | "
                      f"{fmt(test, metric)} | {record['command_seconds']:.0f} | `{shown}` |", flush=True)
                slow = record["command_seconds"] > TIME_LIMIT_S
                if coordconv and task in BAR and (test < BAR[task] or slow):
                    failures.append(f"{task} {split}: test {metric} {test:.4f}, "
                                    f"{record['command_seconds']:.0f}s")
    if args.json is not None:
        save_json(args.json, rows)
    if failures:
        print("bar missed: " + "; ".join(failures))
        sys.exit(1)
    if any(row["coordconv"] and row["task"] in BAR for row in rows):
        print("bar met: every CoordConv classify/render row reached its test target "
              f"in under {TIME_LIMIT_S:.0f}s")


if __name__ == "__main__":
    main()
