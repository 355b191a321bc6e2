import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from gen.cli import main

REPO = Path(__file__).resolve().parents[1]
TRAIN = ["train", "gan", "--steps", "2", "--batch-size", "4", "--g-width", "4", "--d-width", "4",
         "--latent-dim", "8", "--eval-every", "100", "--device", "cpu"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def gen_script() -> str | None:
    """The `gen` console script of this Python: beside its executable (a venv used without
    activating it), else on PATH."""
    beside = Path(sys.executable).parent / "gen"
    return str(beside) if beside.is_file() else shutil.which("gen")


def test_console_script_python_m_and_the_checkouts_cli_py_list_the_same_commands():
    script = gen_script()
    assert script is not None, "pip install -e . puts the gen console script beside python"
    listed = run(script, "--help")
    module = run(sys.executable, "-m", "gen", "--help")
    checkout = run(sys.executable, str(REPO / "cli.py"), "--help")
    assert listed.returncode == module.returncode == checkout.returncode == 0
    assert listed.stdout == module.stdout == checkout.stdout
    assert all(command in listed.stdout for command in ("data", "train", "sample", "metrics", "interpolate",
                                                        "experiment"))


def test_nothing_named_cli_is_installed_at_the_top_level(tmp_path):
    """cli.py serves a checkout; outside one, no module `cli` is importable."""
    code = "import importlib.util; print(importlib.util.find_spec('cli'))"
    found = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert found.returncode == 0 and found.stdout.strip() == "None"


def test_help_imports_no_torch():
    code = ("import sys; from gen.cli import main; main(['train', 'gan', '--help'], standalone_mode=False); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr


def test_a_bug_inside_the_training_step_keeps_its_traceback(tmp_path, monkeypatch):
    """A ValueError from a broken model is a bug, not bad input: no one-line exit 2."""
    from gen.gan.models import DCGANGenerator

    def broken(self, z):
        raise ValueError("shapes do not match inside the model")

    monkeypatch.setattr(DCGANGenerator, "forward", broken)
    result = CliRunner().invoke(main, [*TRAIN, "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert isinstance(result.exception, ValueError) and "inside the model" in str(result.exception)
    assert "Error:" not in result.output


def test_the_traceback_reaches_the_terminal(tmp_path):
    code = ("from gen.gan import models\n"
            "def broken(self, z):\n    raise ValueError('shapes do not match inside the model')\n"
            "models.DCGANGenerator.forward = broken\n"
            "from gen.cli import main\n"
            f"main({[*TRAIN, '--out', str(tmp_path / 'run')]!r}, prog_name='gen')\n")
    result = run(sys.executable, "-c", code)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr and "inside the model" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--data", "lsun"], "--data lsun needs --root"),
    (["--resolution", "32"], "squares images are 64 x 64"),
    (["--coordconv", "--coord-layers", "first"], "--coord-layers first needs a DCGAN G"),
    (["--subpixel-jitter", "0.5"], "subpixel jitter needs the tiled G"),
])
def test_bad_input_from_deep_in_the_library_is_one_line_and_exit_2(tmp_path, args, message):
    result = CliRunner().invoke(main, [*TRAIN, *args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag, expected", [([], True), (["--no-minibatch-std"], False)])
def test_minibatch_std_follows_the_preset_unless_switched_off(tmp_path, flag, expected):
    result = CliRunner().invoke(main, [*TRAIN, "--steps", "1", *flag, "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"]["discriminator"]["minibatch_std"] is expected


def test_every_config_setting_is_one_generated_option_and_nothing_else_is_hand_made():
    from gen import cli as commands

    by_hand = {"coordconv", "coord_in", "coord_layers", "out", "resume", "config_file", "help"}
    for command, generated in ((commands.train_gan, commands.GAN_OPTIONS),
                               (commands.train_vae, commands.VAE_OPTIONS)):
        names = [param.name for param in command.params]
        assert len(names) == len(set(names))
        made = {item.name for item in (*commands.RUN_OPTIONS, *generated)}
        assert set(names) - made <= by_hand
        assert made <= set(names)
    assert {"g_width", "d_width", "r1", "ema", "subpixel_jitter", "steps", "batch_size"} <= {
        item.name for item in (*commands.RUN_OPTIONS, *commands.GAN_OPTIONS)}


def test_help_groups_options_and_shows_each_presets_default_where_it_applies():
    gan = CliRunner().invoke(main, ["train", "gan", "--help"]).output
    for section in ("Run options:", "Data options:", "Generator options:", "Discriminator options:",
                    "Loss and optimiser options:", "Speed and device options:", "Evaluation options:"):
        assert section in gan
    assert gan.index("Generator options:") < gan.index("--g-width") < gan.index("Discriminator options:")
    assert "0.5 (tiled preset)" in gan and "transpose (dcgan preset)" in gan
    assert "Model options:" in CliRunner().invoke(main, ["train", "vae", "--help"]).output


def test_a_saved_config_starts_the_same_model_and_options_beside_it_override(tmp_path):
    from gen.checkpoint import load_checkpoint

    first = CliRunner().invoke(main, [*TRAIN, "--seed", "3", "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    config = str(tmp_path / "a" / "config.json")
    again = CliRunner().invoke(main, ["train", "gan", "--config", config, "--steps", "2", "--out",
                                      str(tmp_path / "b")])
    assert again.exit_code == 0, again.output
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    assert a.model == b.model and a.run == b.run
    for name, weights in a.task["networks"]["generator"].items():
        assert torch.equal(weights, b.task["networks"]["generator"][name]), name
    changed = CliRunner().invoke(main, ["train", "gan", "--config", config, "--g-lr", "1e-3", "--seed", "4",
                                        "--steps", "1", "--out", str(tmp_path / "c")])
    assert changed.exit_code == 0, changed.output
    c = load_checkpoint(tmp_path / "c")
    assert (c.model.g_lr, c.run.seed, c.model.generator.width) == (1e-3, 4, a.model.generator.width)
    (tmp_path / "bad.json").write_text("{}")
    for args, message in [(["--config", config, "--coordconv"], "drop --coordconv"),
                          (["--config", str(tmp_path / "bad.json")], "is not a run's config.json"),
                          (["--resume", str(tmp_path / "a"), "--config", config], "cannot change --config")]:
        result = CliRunner().invoke(main, ["train", "gan", *args, "--out", str(tmp_path / "d")])
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1


def test_a_config_json_saved_before_the_object_layers_were_removed_still_starts_a_run(tmp_path):
    first = CliRunner().invoke(main, [*TRAIN, "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    saved["model"]["generator"].update(objects=1, radial=False, colour_start="drawn", start_colours=[])
    del saved["run"]["keep"]  # from before snapshot rotation: kept every snapshot
    (tmp_path / "old.json").write_text(json.dumps(saved))
    again = CliRunner().invoke(main, ["train", "gan", "--config", str(tmp_path / "old.json"), "--out",
                                      str(tmp_path / "b")])
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "b" / "config.json").read_text())["run"]["keep"] is None
    saved["model"]["generator"]["objects"] = 2
    (tmp_path / "layers.json").write_text(json.dumps(saved))
    refused = CliRunner().invoke(main, ["train", "gan", "--config", str(tmp_path / "layers.json"), "--out",
                                        str(tmp_path / "c")])
    assert refused.exit_code == 2 and "object layers (objects)" in refused.output
