"""Render the results pages (docs/results/NAME.md) and the README's results table from the
result files, so that every number in the docs comes from a record; `check` finds the pages
that differ from their rendering."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

from gen.errors import InputError
from gen.experiments import Experiment, Metric, Row, load_all
from gen.experiments.runner import RESULTS, check_result, read_result, result_path

DOCS = Path("docs/results")
README = Path("README.md")
BEGIN = "<!-- results: rendered by `gen experiment report` from results/; do not edit by hand -->"
END = "<!-- results: end -->"


def load_records(experiment: Experiment, root: Path = Path(), steps: int | None = None) -> list[dict]:
    """Every result record of an experiment, in row then seed order; InputError naming a file
    that does not parse, names no row of the experiment, or was made by another command than
    its row's (or by another step count than `steps`: None for the committed results)."""
    folder = root / RESULTS / experiment.name
    records = []
    rows = [row.name for row in experiment.rows]
    for path in sorted(folder.glob("*.json")):
        record = read_result(path)
        if record["row"] not in rows:
            raise InputError(f"{path}: row {record['row']!r} is not a row of experiment {experiment.name}")
        row = experiment.row(record["row"])
        check_result(path, record, row, record["seed"], steps)
        if path != result_path(folder, row, record["seed"]):
            raise InputError(f"{path} holds row {row.name} at seed {record['seed']}: its name says otherwise")
        records.append(record)
    return sorted(records, key=lambda record: (rows.index(record["row"]), record["seed"]))


def spread(values: list[float], digits: int = 3) -> str:
    """'mean [min-max]' of the values, or '-' when there are none."""
    if not values:
        return "-"
    if min(values) == max(values):  # one seed, or every seed alike
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} [{min(values):.{digits}f}, {max(values):.{digits}f}]"


def digits_for(metric: Metric) -> int:
    return 0 if metric.label == "params" else 3


def row_records(records: list[dict], row: Row) -> list[dict]:
    return [record for record in records if record["row"] == row.name]


def seeds_cell(experiment: Experiment, rows: list[dict]) -> str:
    seeds = ",".join(str(record["seed"]) for record in rows)
    missing = [seed for seed in experiment.seeds if seed not in {record["seed"] for record in rows}]
    if not rows:
        return "none yet"
    return seeds + (f" (missing {','.join(map(str, missing))})" if missing else "")


def partial_spread(values: list[float], seeds: int, digits: int = 3) -> str:
    """The spread of values from some of `seeds` seeds, saying how many gave one when not all did."""
    partial = f" ({len(values)} of {seeds} seeds)" if 0 < len(values) < seeds else ""
    return spread(values, digits) + partial


def metric_cell(metric: Metric, rows: list[dict]) -> str:
    """A metric's spread over a row's records, saying how many had it when not all did."""
    values = [value for value in (metric.read(record) for record in rows) if value is not None]
    return partial_spread(values, len(rows), digits_for(metric))


def results_table(experiment: Experiment, records: list[dict]) -> list[str]:
    titles = [metric.label for metric in experiment.metrics] + ["wall min"]
    lines = [
        "| row | command | seeds | " + " | ".join(titles) + " |",
        "|---|---|---|" + "---:|" * len(titles),
    ]
    for row in experiment.rows:
        rows = row_records(records, row)
        cells = [metric_cell(metric, rows) for metric in experiment.metrics]
        whole = [r["wall_s"] / 60 for r in rows if "resumed_with" not in r]  # a resume times its part only
        cells.append(partial_spread(whole, len(rows), 1))
        lines.append(
            f"| {row.name} | `{row.command}` | {seeds_cell(experiment, rows)} | " + " | ".join(cells) + " |"
        )
    return lines


def paired_table(experiment: Experiment, records: list[dict]) -> list[str]:
    """Each row with a baseline, minus that baseline on the same seed: mean [min-max]."""
    metrics = [metric for metric in experiment.metrics if metric.label != "params"]
    lines = [
        "| row | baseline | seeds | " + " | ".join(f"d {metric.label}" for metric in metrics) + " |",
        "|---|---|---|" + "---:|" * len(metrics),
    ]
    for row in experiment.rows:
        if row.baseline is None:
            continue
        base = {record["seed"]: record for record in row_records(records, experiment.row(row.baseline))}
        pairs = [
            (record, base[record["seed"]]) for record in row_records(records, row) if record["seed"] in base
        ]
        cells = []
        for metric in metrics:
            values = [(metric.read(a), metric.read(b)) for a, b in pairs]
            differences = [a - b for a, b in values if a is not None and b is not None]
            cells.append(partial_spread(differences, len(pairs)))
        seeds = ",".join(str(a["seed"]) for a, _ in pairs) or "none yet"
        lines.append(f"| {row.name} | {row.baseline} | {seeds} | " + " | ".join(cells) + " |")
    return lines


def pictures(experiment: Experiment, records: list[dict], root: Path) -> list[str]:
    """Per row, the sample grid and position heat map of its lowest seed with both."""
    lines = ["| row | seed | samples | position heat map (generated, real) |", "|---|---:|---|---|"]
    for row in experiment.rows:
        for record in row_records(records, row):
            stem = f"{row.name}-seed{record['seed']}"
            folder = root / RESULTS / experiment.name
            if (folder / f"{stem}-samples.png").is_file() and (folder / f"{stem}-heatmap.png").is_file():
                link = f"../../{RESULTS}/{experiment.name}/{stem}"
                lines.append(
                    f"| {row.name} | {record['seed']} | ![{stem} samples]({link}-samples.png) | "
                    f"![{stem} heat map]({link}-heatmap.png) |"
                )
                break
    return lines if len(lines) > 2 else []


def provenance(records: list[dict]) -> list[str]:
    """Which code, machine and settings made the records, grouped."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for record in records:
        machine = record.get("machine", {})
        hardware = machine.get("gpu") or machine.get("cpu", "?")
        key = (
            record.get("commit") or "?",
            hardware,
            machine.get("torch", "?"),
            machine.get("threads"),
            record.get("jobs"),
        )
        groups[key].append(record)
    lines = [
        "| runs | commit | machine | torch | threads x jobs | speed reference (s) | dates (UTC) |",
        "|---:|---|---|---|---|---|---|",
    ]
    for (commit, hardware, torch, threads, jobs), group in groups.items():
        readings = [r["speed_reference_s"] for r in group if r.get("speed_reference_s") is not None]
        dates = sorted(r.get("date", "?")[:10] for r in group)
        reading = f"{min(readings):.3f}-{max(readings):.3f}" if readings else "-"
        span = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
        lines.append(
            f"| {len(group)} | {commit} | {hardware} | {torch} | {threads} x {jobs} | {reading} | {span} |"
        )
    return lines


def render_page(experiment: Experiment, records: list[dict], root: Path = Path()) -> str:
    finding = experiment.finding or "Not stated yet: the rows have not all run."
    score_note = (
        f" Interpolation paths: {experiment.paths} per run, scored by `gen interpolate --score`"
        " (a model with too few valid samples to find path endpoints has none)."
        if any(metric.path.startswith("score.") for metric in experiment.metrics)
        else ""
    )
    lines = [
        f"# {experiment.title}",
        "",
        f"<!-- rendered by `gen experiment report` from results/{experiment.name}/ and "
        f"gen/experiments/definitions/{experiment.name}.toml; do not edit by hand -->",
        "",
        f"**Finding.** {finding}",
        "",
        f"**What varies:** {experiment.factor}. {experiment.description}",
        "",
        f"Run it with `gen experiment run {experiment.name}` (seeds {', '.join(map(str, experiment.seeds))}; "
        "each row's command gets `--seed S --out DIR --device D`), then `gen experiment report`.",
        "",
        "## Results",
        "",
        "Mean [min, max] over the seeds (one value where every seed gave it). Metrics are the "
        f"run's last evaluation (`metrics.json`).{score_note} Wall minutes are the training command's.",
        "",
        *results_table(experiment, records),
    ]
    if any(row.baseline for row in experiment.rows):
        lines += [
            "",
            "## Paired differences",
            "",
            "Each row minus its baseline row on the same seed: mean [min, max] over the seeds.",
            "",
            *paired_table(experiment, records),
        ]
    shown = pictures(experiment, records, root) if experiment.images else []
    if shown:
        lines += [
            "",
            "## Samples and where they land",
            "",
            "16 samples, and the mean of 1,000 samples beside the real data's (`gen metrics coverage "
            "--heatmap`), of one seed per row.",
            "",
            *shown,
        ]
    if records:
        lines += [
            "",
            "## Provenance",
            "",
            "Every record holds its full command, resolved config, seed, commit, machine and date. "
            "Runs with jobs above 1 shared the CPU, so their wall times are not each run's alone.",
            "",
            *provenance(records),
        ]
    return "\n".join(lines) + "\n"


def readme_block(experiments: list[Experiment], records: dict[str, list[dict]]) -> str:
    lines = [BEGIN]
    for experiment in experiments:
        headline = [metric for metric in experiment.metrics if metric.label in experiment.headline]
        lines += [
            "",
            f"[{experiment.title}](docs/results/{experiment.name}.md): "
            f"{experiment.finding or 'not stated yet.'}",
            "",
            "| row | seeds | " + " | ".join(metric.label for metric in headline) + " |",
            "|---|---|" + "---:|" * len(headline),
        ]
        for row in experiment.rows:
            rows = row_records(records[experiment.name], row)
            cells = [metric_cell(metric, rows) for metric in headline]
            lines.append(f"| {row.name} | {seeds_cell(experiment, rows)} | " + " | ".join(cells) + " |")
    lines += ["", END]
    return "\n".join(lines)


def with_block(readme: str, block: str) -> str:
    """The README with its results block replaced; InputError when it has no block."""
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        raise InputError(f"{README} has no results block ({BEGIN} ... {END})")
    return readme[:start] + block + readme[end + len(END) :]


def rendered(root: Path = Path()) -> dict[Path, str]:
    """Every rendered file (relative to root) and its text."""
    experiments = load_all()
    records = {experiment.name: load_records(experiment, root) for experiment in experiments}
    files = {
        DOCS / f"{experiment.name}.md": render_page(experiment, records[experiment.name], root)
        for experiment in experiments
    }
    files[BENCHMARKS] = benchmark_page(root)
    readme = root / README
    if readme.is_file():
        files[README] = with_block(readme.read_text(), readme_block(experiments, records))
    return files


def write(root: Path = Path()) -> list[Path]:
    """Render every page and the README's block; returns the files that changed."""
    from gen.fileio import atomic_path

    changed = []
    for path, text in rendered(root).items():
        target = root / path
        if target.is_file() and target.read_text() == text:
            continue
        with atomic_path(target) as tmp:
            tmp.write_text(text)
        changed.append(path)
    return changed


def stale(root: Path = Path()) -> list[Path]:
    """The rendered files whose committed text differs from their rendering (or that are missing)."""
    return [
        path
        for path, text in rendered(root).items()
        if not (root / path).is_file() or (root / path).read_text() != text
    ]


BENCHMARKS = Path("docs/benchmarks.md")
BENCHMARK_RESULTS = RESULTS / "benchmarks"


def benchmark_page(root: Path = Path()) -> str:
    """docs/benchmarks.md from the device checks' JSON (benchmarks/gpu_check.py), one section
    per check, each naming its device, torch version and date."""
    lines = [
        "# Benchmarks",
        "",
        "<!-- rendered by `gen experiment report` from results/benchmarks/; do not edit by hand -->",
        "",
        "Each section is one run of `python benchmarks/gpu_check.py` (its folder under "
        "results/benchmarks/): every part's tables as the benchmark printed them, side by side in one "
        "process, with the ratio in the same run. What each script measures: benchmarks/README.md.",
        "",
    ]
    folders = sorted(path for path in (root / BENCHMARK_RESULTS).glob("*") if path.is_dir())
    if not folders:
        lines.append("No device check has been committed yet.")
    for folder in folders:
        summary_path = folder / "summary.json"
        if not summary_path.is_file():
            raise InputError(f"{folder}: a device check folder without summary.json")
        summary = read_json(summary_path)
        lines += [
            f"## {summary['device']} ({summary['device_kind']}), torch {summary['torch']}, "
            f"{summary['date'][:10]}" + (f", commit {summary['commit']}" if summary.get("commit") else ""),
            "",
            "| part | status | wall s |",
            "|---|---|---:|",
        ]
        lines += [f"| {part['part']} | {part['status']} | {part['wall_s']} |" for part in summary["parts"]]
        for part in summary["parts"]:
            path = folder / f"{part['part']}.json"
            if not path.is_file():
                continue
            record = read_json(path)
            shown = [table for table in record.get("tables", []) if table]
            if not shown and "measured" not in record:
                continue
            lines += [
                "",
                f"### {part['part']}",
                "",
                f"`{' '.join(Path(arg).name if '/' in arg else arg for arg in record['command'])}`",
            ]
            for table in shown:
                columns = list(table[0])
                lines += ["", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
                lines += [
                    "| " + " | ".join(row.get(column, "") for column in columns) + " |" for row in table
                ]
            if "measured" in record:
                lines += ["", "`" + json.dumps(record["measured"], sort_keys=True) + "`"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: not readable JSON ({error})") from None
