"""Reproduce the README's generative-model tables: each default command over several seeds.

Runs every row's `gen train ...` command once per seed, one after another (never two at
once, so wall times are fair), then scores the run's latent interpolations with
`gen interpolate --score`, and prints a markdown table: per number the mean and the
min-max over the seeds, the command of each row, and the wall time, raw and scaled to the
speed reference (benchmarks/speed_reference.py, measured before and after the rows).

Usage: python benchmarks/reproduce.py [--rows gan-squares-coordconv,gan-squares-conv]
       [--seeds 0,1,2] [--threads 2] [--out runs/reproduce] [--json results.json]
       [--steps N (a quick smoke run instead of the defaults)] [--paths 256]
       [--reference-steps 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from speed_reference import REFERENCE_SECONDS, step_seconds

from gen.fileio import save_json

REPO = Path(__file__).resolve().parents[1]
# the shapes preset of 2026-12-02 (third session), before one distance-only mask per kind and a
# colour coin: the rows of the presets and screens before today start from it, so they give
# back the same runs
SHAPES_BEFORE = ["train", "gan", "--coordconv", "--data", "shapes", "--latent-masks", "--offset-coords",
                 "--coin-box", "l4", "--no-colour-coin", "--centre-spread", "0"]
ROWS = {
    "gan-squares-coordconv": ["train", "gan", "--coordconv"],
    "gan-squares-conv": ["train", "gan"],
    # the conv GAN at about the CoordConv default's wall time: its steps are about 3x as fast on these CPUs
    "gan-squares-conv-same-budget": ["train", "gan", "--steps", "14000"],
    "gan-shapes-coordconv": ["train", "gan", "--coordconv", "--data", "shapes"],
    "gan-shapes-coordconv-before": SHAPES_BEFORE,
    # the presets before at the 2,500 steps they used: that of 2026-12-02; two radial layers
    # (2026-11-29); then kind coins with L4 boxes, unsnapped and snapped, in drawn colours (2026-12-02)
    "gan-shapes-coordconv-2500": [*SHAPES_BEFORE, "--steps", "2500"],
    "gan-shapes-coordconv-radial": [*SHAPES_BEFORE, "--steps", "2500", "--no-kind-coins", "--no-snap-centres",
                                    "--subpixel-jitter", "0.5", "--colour-start", "drawn"],
    "gan-shapes-coordconv-kind-coins": [*SHAPES_BEFORE, "--steps", "2500", "--no-snap-centres",
                                        "--subpixel-jitter", "0.5", "--colour-start", "drawn"],
    "gan-shapes-coordconv-kind-coins-snapped": [*SHAPES_BEFORE, "--steps", "2500", "--colour-start", "drawn"],
    # two screens from the preset of 2026-12-02: each layer's centre from its own slice of z and the
    # centres before it; each layer drawn from its distance to its centre alone, symmetric about it
    "gan-shapes-coordconv-chained": [*SHAPES_BEFORE, "--chained-centres"],
    "gan-shapes-coordconv-distance-only": [*SHAPES_BEFORE, "--no-offset-coords"],
    "gan-shapes-conv": ["train", "gan", "--data", "shapes"],
    # the conv GAN at about the wall time of the CoordConv shapes default of 2026-11-29 (two radial layers)
    "gan-shapes-conv-same-budget": ["train", "gan", "--data", "shapes", "--steps", "10000"],
    "vae-squares-coordconv": ["train", "vae", "--coordconv", "--split", "uniform"],
    "vae-squares-conv": ["train", "vae", "--split", "uniform"],
}
# (column, path into metrics.json or the score summary); rows show the columns they have.
COLUMNS = [
    ("valid", ("metrics", "valid_fraction")),
    ("coverage_ratio", ("metrics", "coverage_ratio")),
    ("red coverage_ratio", ("metrics", "red", "coverage_ratio")),
    ("blue coverage_ratio", ("metrics", "blue", "coverage_ratio")),
    ("offset coverage_ratio", ("metrics", "offset", "coverage_ratio")),
    ("placed", ("metrics", "position_only", "placed_fraction")),
    ("placed coverage_ratio", ("metrics", "position_only", "coverage_ratio")),
    ("recon. within 1 px", ("metrics", "reconstruction_within_1px")),
    ("paths: move", ("score", "move_fraction")),
    ("paths: fade", ("score", "fade_fraction")),
]
# The README's interpolation table: every number of the move-vs-fade score.
SCORE_COLUMNS = [
    ("valid frames", ("score", "valid_fraction")),
    ("paths: move", ("score", "move_fraction")),
    ("paths: fade", ("score", "fade_fraction")),
    ("paths: teleport", ("score", "teleport_fraction")),
    ("vanishes / path", ("score", "vanishes_per_path")),
    ("doubles / path", ("score", "doubles_per_path")),
    ("median max step", ("score", "max_step_median")),
]


def gen_command(args: list[str], threads: int) -> subprocess.CompletedProcess:
    """Run `python -m gen ARGS` from this checkout with `threads` intra-op threads."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return subprocess.run([sys.executable, "-m", "gen", *args], cwd=REPO, env=env, capture_output=True,
                          text=True)


def speed_reference(threads: int, steps: int) -> float:
    """The reference DCGAN step's median seconds on this machine now."""
    torch.set_num_threads(threads)
    return statistics.median(step_seconds(steps=steps, warmup=min(2, steps), device=torch.device("cpu")))


def run_row(name: str, seed: int, out: Path, threads: int, steps: int | None, paths: int) -> dict:
    """Train one row at one seed, score its interpolations; the record of both."""
    run_dir = out / f"{name}-seed{seed}"
    train = [*ROWS[name], "--seed", str(seed), "--out", str(run_dir), "--device", "cpu"]
    if steps is not None:
        train += ["--steps", str(steps), "--eval-every", str(steps)]
    start = time.perf_counter()
    result = gen_command(train, threads)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(train)} failed:\n{result.stderr[-2000:]}")
    record = {"row": name, "seed": seed, "command": "gen " + " ".join(ROWS[name]), "wall_s": round(wall, 1),
              "metrics": json.loads((run_dir / "metrics.json").read_text()), "score": None}
    score_json = run_dir / "interpolation-score.json"
    score = ["interpolate", str(run_dir), "--score", "--paths", str(paths), "--json", str(score_json),
             "--device", "cpu", *(["--endpoints", "data"] if ROWS[name][1] == "vae" else [])]
    scored = gen_command(score, threads)
    if scored.returncode == 0:
        record["score"] = json.loads(score_json.read_text())["summary"]
    else:
        record["score_error"] = scored.stderr.strip().splitlines()[-1] if scored.stderr.strip() else "failed"
    return record


def lookup(record: dict, path: tuple[str, ...]) -> float | None:
    value = record
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return float(value)


def spread(values: list[float]) -> str:
    """mean [min-max] of the defined values, or - when there are none."""
    if not values:
        return "-"
    return f"{statistics.mean(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def table(records: list[dict], columns: list[tuple[str, tuple[str, ...]]], scale: float | None) -> str:
    """The markdown table: a row per command, each number as mean [min-max] over seeds; the
    columns some record has, then wall minutes (raw and scaled) unless `scale` is None."""
    names = list(dict.fromkeys(record["row"] for record in records))
    shown = [(title, path) for title, path in columns
             if any(lookup(record, path) is not None for record in records)]
    titles = [title for title, _ in shown] + ([] if scale is None else ["wall min", "scaled min"])
    lines = ["| command | seeds | " + " | ".join(titles) + " |", "|---|---|" + "---:|" * len(titles)]
    for name in names:
        rows = [record for record in records if record["row"] == name]
        cells = [spread([v for v in (lookup(r, path) for r in rows) if v is not None]) for _, path in shown]
        if scale is not None:
            walls = [r["wall_s"] / 60 for r in rows]
            cells += [spread(walls), spread([w * scale for w in walls])]
        seeds = ",".join(str(r["seed"]) for r in rows)
        lines.append(f"| `{rows[0]['command']}` | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS), help=f"Comma-separated, from {', '.join(ROWS)}.")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None, help="Override the defaults (smoke runs only).")
    parser.add_argument("--paths", type=int, default=256, help="Interpolation paths scored per run.")
    parser.add_argument("--reference-steps", type=int, default=10,
                        help="Steps of the speed reference measured before and after the rows.")
    parser.add_argument("--out", type=Path, default=Path("runs/reproduce"))
    parser.add_argument("--json", type=Path, default=None, help="Write every run's record here.")
    args = parser.parse_args()
    names = args.rows.split(",")
    unknown = set(names) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {', '.join(sorted(unknown))}; choose from {', '.join(ROWS)}")

    before = speed_reference(args.threads, args.reference_steps)
    records = []
    for name in names:
        for seed in (int(seed) for seed in args.seeds.split(",")):
            record = run_row(name, seed, args.out, args.threads, args.steps, args.paths)
            records.append(record)
            print(f"{name} seed {seed}: {record['wall_s'] / 60:.1f} min, valid "
                  f"{lookup(record, ('metrics', 'valid_fraction')):.3f}", file=sys.stderr, flush=True)
    after = speed_reference(args.threads, args.reference_steps)
    reading = (before + after) / 2
    scale = REFERENCE_SECONDS / reading
    print(f"{args.threads} threads; speed reference (benchmarks/speed_reference.py) {before:.3f} s before, "
          f"{after:.3f} s after: scaled wall = wall x {REFERENCE_SECONDS} / {reading:.3f} "
          f"= wall x {scale:.3f}"
          + (f"; --steps {args.steps} (smoke run, not the defaults)" if args.steps else ""))
    print(table(records, COLUMNS, scale))
    if any(record["score"] for record in records):
        print("\nInterpolation paths (the move-vs-fade score of each run):")
        print(table(records, SCORE_COLUMNS, None))
    if args.json is not None:
        save_json(args.json, {"threads": args.threads, "speed_reference_s": [before, after],
                              "steps_override": args.steps, "runs": records})


if __name__ == "__main__":
    main()
