import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from gen.cli import main
from gen.errors import InputError
from gen.experiments import Metric, Row, load, load_all, names, parse, parse_seeds
from gen.experiments.report import (
    load_records,
    paired_table,
    partial_spread,
    readme_block,
    render_page,
    spread,
    stale,
    with_block,
)
from gen.experiments.runner import Plan, commit, pending, read_result, with_steps

REPO = Path(__file__).resolve().parents[1]
GOOD = """
title = "T"
factor = "f"
description = "d"
finding = ""
seeds = [0, 1, 2]
headline = ["valid"]

[[metrics]]
label = "valid"
path = "metrics.valid_fraction"

[[rows]]
name = "a"
command = "gen train gan --steps 5"

[[rows]]
name = "b"
command = "gen train gan --coordconv --steps 5"
baseline = "a"
"""


def record(row: str, seed: int, valid: float, **extra) -> dict:
    return {"experiment": "coordconv-placement", "row": row, "seed": seed, "wall_s": 60.0,
            "metrics": {"valid_fraction": valid}, "score": None, "commit": "abc", "jobs": 1,
            "machine": {"cpu": "test CPU", "torch": "2", "threads": 2}, "speed_reference_s": 1.0,
            "date": "2026-01-01T00:00:00+00:00", **extra}


def current(experiment, row: str, seed: int, valid: float, **extra) -> dict:
    """A record made by the row's command as defined now."""
    return record(row, seed, valid, row_command=experiment.row(row).command, steps_override=None, **extra)


def write_records(root: Path, name: str, records: list[dict]) -> None:
    folder = root / "results" / name
    folder.mkdir(parents=True, exist_ok=True)
    for item in records:
        (folder / f"{item['row']}-seed{item['seed']}.json").write_text(json.dumps(item))


def test_the_four_experiments_are_defined_and_list():
    assert set(names()) >= {"coordconv-placement", "paper-generators", "vae-decoders", "toy"}
    result = CliRunner().invoke(main, ["experiment", "list"])
    assert result.exit_code == 0
    for experiment in load_all():
        assert experiment.name in result.output
        assert len(experiment.seeds) >= 3


def test_placement_rows_vary_only_the_coordconv_switches():
    experiment = load("coordconv-placement")
    switches = {"--coordconv", "--coord-in", "d", "g", "--arch", "dcgan", "--coord-layers", "first"}
    for data in ("squares", "shapes"):
        rows = [row for row in experiment.rows if row.name.startswith(data)]
        rest = {tuple(arg for arg in row.argv if arg not in switches) for row in rows}
        assert len(rest) == 1, rest  # everything but the switches is the same command


def test_bad_experiment_files_are_input_errors(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text(GOOD)
    assert [row.name for row in parse(path).rows] == ["a", "b"]
    for bad, message in [(GOOD.replace("[0, 1, 2]", "[0, 1]"), "at least 3 seeds"),
                         (GOOD.replace("gen train gan --steps 5", "python train.py"), "commands are"),
                         (GOOD.replace("--steps 5\"\n\n", "--steps 5 --seed 3\"\n\n"), "sets --seed"),
                         (GOOD.replace('baseline = "a"', 'baseline = "c"'), "baseline 'c' is not a row"),
                         (GOOD.replace('headline = ["valid"]', 'headline = ["nope"]'), "headline"),
                         (GOOD.replace('title = "T"', ""), "missing or malformed field"),
                         ("title = ", "not a readable experiment file")]:
        path.write_text(bad)
        with pytest.raises(InputError, match=message):
            parse(path)


def test_seeds_steps_and_metric_paths():
    assert parse_seeds("3,1,2") == (3, 1, 2)
    for bad in ("0,x", "-1", "1,1", ""):
        with pytest.raises(InputError, match="--seeds"):
            parse_seeds(bad)
    assert with_steps(["train", "gan", "--steps", "9", "--coordconv"], 2) == ["train", "gan", "--coordconv",
                                                                              "--steps", "2"]
    assert with_steps(["train", "vae", "--steps=9"], 2) == ["train", "vae", "--steps", "2"]
    metric = Metric("placed", "metrics.position_only.coverage_ratio")
    assert metric.read({"metrics": {"position_only": {"coverage_ratio": 0.5}}}) == 0.5
    assert metric.read({"metrics": {"position_only": None}}) is None
    assert Row("r", "gen toy render --split quadrant").kind == "toy"
    assert Row("r", "gen train vae --split quadrant").kind == "vae"


def test_spread_is_mean_and_range():
    assert spread([]) == "-"
    assert spread([0.5]) == "0.500" and spread([1.0, 1.0]) == "1.000"
    assert spread([0.1, 0.2, 0.6]) == "0.300 [0.100, 0.600]"


def test_partial_spread_says_how_many_seeds_gave_a_value():
    assert partial_spread([0.1, 0.3], 2) == "0.200 [0.100, 0.300]"
    assert partial_spread([0.1, 0.3], 3, 1) == "0.2 [0.1, 0.3] (2 of 3 seeds)"
    assert partial_spread([], 3) == "-"


def test_pages_show_every_row_with_missing_seeds_and_paired_differences(tmp_path):
    experiment = load("coordconv-placement")
    write_records(tmp_path, experiment.name, [
        current(experiment, "squares-none", 0, 0.2), current(experiment, "squares-none", 1, 0.4),
        current(experiment, "squares-d", 0, 0.5), current(experiment, "squares-d", 1, 0.3),
        current(experiment, "squares-d", 2, 0.9, resumed_with="gen train gan --resume X")])
    records = load_records(experiment, tmp_path)
    page = render_page(experiment, records, tmp_path)
    command = "`gen train gan --steps 3000 --eval-every 3000`"
    assert f"| squares-none | {command} | 0,1 (missing 2) | 0.300 [0.200, 0.400]" in page
    assert "| squares-g |" in page and "none yet" in page
    paired = "\n".join(paired_table(experiment, records))
    assert "| squares-d | squares-none | 0,1 | 0.100 [-0.100, 0.300] |" in paired  # 0.5-0.2, 0.3-0.4
    assert "test CPU" in page and "2026-01-01" in page
    resumed = "| 0.567 [0.300, 0.900] | - | - | - | - | - | 1.0 (2 of 3 seeds) |"
    assert resumed in page  # a resumed run's wall time counts its last part only: left out


def test_a_result_file_that_does_not_parse_is_named(tmp_path):
    experiment = load("coordconv-placement")
    folder = tmp_path / "results" / experiment.name
    folder.mkdir(parents=True)
    (folder / "squares-none-seed0.json").write_text("{not json")
    with pytest.raises(InputError, match="squares-none-seed0.json: not a readable result file"):
        load_records(experiment, tmp_path)
    with pytest.raises(InputError, match="squares-none-seed0.json"):
        pending(Plan(experiment, (0,), out=folder))
    (folder / "squares-none-seed0.json").write_text(json.dumps(record("other-row", 0, 0.1)))
    with pytest.raises(InputError, match="not a row"):
        load_records(experiment, tmp_path)
    with pytest.raises(InputError, match="lacks row"):
        (folder / "x.json").write_text("{}")
        read_result(folder / "x.json")


def test_a_result_made_by_another_command_is_refused_not_reported(tmp_path):
    """Editing a row's command makes its old results stale: report and run both say so."""
    experiment = load("coordconv-placement")
    old = record("squares-none", 0, 0.2, row_command="gen train gan --steps 10", steps_override=None)
    write_records(tmp_path, experiment.name, [old])
    with pytest.raises(InputError, match="made by `gen train gan --steps 10`.*delete it"):
        load_records(experiment, tmp_path)
    with pytest.raises(InputError, match="delete it"):
        pending(Plan(experiment, (0,), out=tmp_path / "results" / experiment.name))
    row = experiment.row("squares-none")
    smoke = record("squares-none", 0, 0.2, row_command=row.command, steps_override=2)
    write_records(tmp_path, experiment.name, [smoke])
    with pytest.raises(InputError, match="steps override 2"):
        load_records(experiment, tmp_path)
    good = record("squares-none", 0, 0.2, row_command=row.command, steps_override=None)
    write_records(tmp_path, experiment.name, [good])
    assert len(load_records(experiment, tmp_path)) == 1
    (tmp_path / "results" / experiment.name / "squares-none-seed0.json").rename(
        tmp_path / "results" / experiment.name / "squares-none-seed7.json")
    with pytest.raises(InputError, match="its name says otherwise"):
        load_records(experiment, tmp_path)


def test_the_readme_block_is_replaced_between_its_markers():
    experiment = replace(load("toy"), finding="CoordConv solves both splits.")
    block = readme_block([experiment], {"toy": []})
    assert "CoordConv solves both splits." in block and "| classify-uniform-conv | none yet | - |" in block
    readme = f"intro\n{block}\noutro\n"
    assert with_block(readme, block) == readme
    with pytest.raises(InputError, match="no results block"):
        with_block("no block here", block)


def test_committed_results_pages_match_their_rendering():
    """What `gen experiment report --check` checks: the docs are the result files' rendering."""
    assert stale(REPO) == []
    result = subprocess.run([sys.executable, "-m", "gen", "experiment", "report", "--check"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_report_check_fails_on_an_edited_page(tmp_path):
    experiment = load("toy")
    (tmp_path / "docs" / "results").mkdir(parents=True)
    page = tmp_path / "docs" / "results" / "toy.md"
    page.write_text(render_page(experiment, [], tmp_path) + "typed by hand\n")
    assert Path("docs/results/toy.md") in stale(tmp_path)


def test_bad_experiment_commands_exit_2_in_one_line(tmp_path):
    for args, message in [(["run", "nope"], "unknown experiment 'nope'"),
                          (["run", "coordconv-placement", "--seeds", "a"], "--seeds must be"),
                          (["run", "toy", "--steps", "3"], "toy rows train for epochs")]:
        result = CliRunner().invoke(main, ["experiment", *args])
        assert result.exit_code == 2, result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_an_experiment_runs_end_to_end_and_continues_where_it_stopped(tmp_path):
    """`gen experiment run coordconv-placement --seeds 0 --steps 2` on three of its rows: each
    trains, is measured and leaves one result file; a second run has nothing left to do."""
    out = tmp_path / "results" / "coordconv-placement"
    rows = ["squares-none", "squares-both", "shapes-both"]
    command = [sys.executable, "-m", "gen", "experiment", "run", "coordconv-placement", "--seeds", "0",
               "--rows", ",".join(rows), "--steps", "2", "--jobs", "2", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    experiment = load("coordconv-placement")
    records = load_records(experiment, tmp_path, steps=2)
    assert [r["row"] for r in records] == rows
    first = records[0]
    assert first["steps_override"] == 2 and first["config"]["run"]["steps"] == 2
    assert first["command"].startswith("gen train gan --eval-every 3000 --steps 2 --seed 0 --out ")
    assert first["metrics"]["step"] == 2 and first["machine"]["threads"] == 1 and first["commit"]
    assert first["speed_reference_s"] is None and first["date"]  # a smoke run: no reference reading
    assert records[2]["config"]["model"]["generator"]["channels"] == 3
    assert (out / "squares-none-seed0-samples.png").is_file()
    assert (out / "shapes-both-seed0-heatmap.png").is_file()
    assert first["score"] is not None or "valid" in first["score_error"]
    page = render_page(experiment, records, tmp_path)
    assert "| squares-both | squares-none | 0 |" in page  # the paired difference of seed 0
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0 and "0 runs to go, 3 already" in again.stdout
    unknown = subprocess.run([*command[:8], "--rows", "nope"], cwd=tmp_path, capture_output=True, text=True)
    assert unknown.returncode == 2 and "no row 'nope'" in unknown.stderr


def test_commit_names_the_checkout_and_says_unknown_without_git(monkeypatch):
    here = commit()
    assert len(here["commit"]) == 10 and here["library_modified"] in (True, False)
    assert commit(("no-such-folder",))["library_modified"] is False  # nothing there differs

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert commit() == {"commit": None, "library_modified": None}
