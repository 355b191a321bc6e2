"""Every command of the README runs as written: the fast ones here, with RUN standing for a
small trained run; the long ones (training, toy tasks, experiments, LSUN preparation, FID,
installs) are only checked to be commands the CLI knows."""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gen.cli import main

REPO = Path(__file__).resolve().parents[1]
LONG = (("train",), ("toy",), ("experiment", "run"), ("data", "prepare"), ("metrics", "fid"))


def readme_commands() -> list[str]:
    """The `gen ...` lines of the README's bash blocks, comments stripped."""
    text = (REPO / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("gen "):
                commands.append(line)
    return commands


def is_long(argv: list[str]) -> bool:
    return any(tuple(argv[:len(prefix)]) == prefix for prefix in LONG)


def test_the_readme_shows_commands():
    commands = readme_commands()
    assert len(commands) > 20
    assert sum(not is_long(shlex.split(command)[1:]) for command in commands) >= 10


@pytest.mark.parametrize("command", [c for c in readme_commands() if is_long(shlex.split(c)[1:])])
def test_long_readme_commands_parse(command):
    """A long command's flags are the CLI's: --help after them parses them all."""
    argv = shlex.split(command)[1:]
    result = CliRunner().invoke(main, [*argv, "--help"])
    assert result.exit_code == 0, result.output


def test_fast_readme_commands_run_as_written(tmp_path, gan_checkpoint, vae_checkpoint):
    for name in ("samples", "results", "gen"):  # what the commands read: the checkout's own files
        source = REPO / name
        if source.exists():
            (tmp_path / name).symlink_to(source)
    shutil.copy(REPO / "README.md", tmp_path / "README.md")
    (tmp_path / "docs").mkdir()
    shutil.copytree(REPO / "docs" / "results", tmp_path / "docs" / "results")
    runs = {"RUN": str(gan_checkpoint.parent), "VAE_RUN": str(vae_checkpoint.parent)}
    for command in readme_commands():
        argv = [runs.get(arg, arg) for arg in shlex.split(command)[1:]]
        if is_long(argv):
            continue
        if argv[:2] == ["metrics", "coverage"] and argv[2] == "samples.npz":
            continue  # needs the .npz that `gen sample RUN --out samples.npz` writes: made below
        if "--score" in argv:
            continue  # scores paths between valid samples: a trained model's, checked in test_interpolation
        done = subprocess.run([sys.executable, "-m", "gen", *argv], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
    subprocess.run([sys.executable, "-m", "gen", "sample", runs["RUN"], "--n", "8", "--out", "samples.npz"],
                   cwd=tmp_path, check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-m", "gen", "metrics", "coverage", "samples.npz", "--dataset",
                           "squares"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
