import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gen.checkpoint import (
    FORMAT,
    LAST_OBJECT_LAYERS_COMMIT,
    Checkpoint,
    load_checkpoint,
    load_task,
    upgrade,
)
from gen.cli import main
from gen.configs import from_dict
from gen.errors import InputError
from gen.gan.config import GAN_PRESETS, GANConfig
from gen.sampling import sample_images

OLD_SAMPLES = "samples-seed5.npz"


def test_format1_checkpoints_load_as_the_models_they_were(format1_checkpoint):
    """Samples of an old checkpoint are bit for bit what the version that saved it drew."""
    record = load_checkpoint(format1_checkpoint)
    assert record.step == 2 and record.kind in ("gan", "vae")
    run = record.run  # saved before FID and the fast paths: resumed as they ran, anywhere
    assert (run.fid_samples, run.precision, run.channels_last, run.compile) == (0, "fp32", False, False)
    with np.load(format1_checkpoint.parent / OLD_SAMPLES) as saved:
        expected = saved[format1_checkpoint.stem.replace("-", "_")]
    assert np.array_equal(sample_images(format1_checkpoint, 4, seed=5, device="cpu"), expected)


def test_format1_tiled_gan_keeps_its_saved_architecture():
    record = load_checkpoint(Path(__file__).parent / "data" / "format1" / "gan-tiled.pt")
    generator = record.model.generator
    tuned = GAN_PRESETS["tiled"].model.generator
    assert generator.arch == "tiled" and generator.width == 2
    assert (generator.mapping_layers, generator.first_gain, generator.mapping_tanh) == (
        tuned.mapping_layers, tuned.first_gain, tuned.mapping_tanh)  # stored in the file, not defaulted
    assert record.run.lr_rampdown == 0.3


def test_format1_checkpoints_resume_and_sample_from_the_command_line(tmp_path, format1_checkpoint):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(format1_checkpoint, run_dir / "checkpoint.pt")
    result = CliRunner().invoke(main, ["train", "gan" if "gan" in format1_checkpoint.stem else "vae",
                                       "--resume", str(run_dir), "--steps", "3", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    resumed = load_checkpoint(run_dir)
    assert resumed.step == 3 and torch.load(run_dir / "checkpoint.pt", weights_only=True)["format"] == FORMAT
    old = load_checkpoint(format1_checkpoint)
    assert (resumed.run, resumed.model) == (replace(old.run, steps=3), old.model)
    result = CliRunner().invoke(main, ["sample", str(run_dir), "--n", "4", "--out", str(tmp_path / "s.png")])
    assert result.exit_code == 0, result.output


def test_payload_round_trip(gan_checkpoint):
    record = load_checkpoint(gan_checkpoint)
    again = Checkpoint.from_payload(record.to_payload())
    fields = ("kind", "run", "model", "step")
    assert [getattr(again, name) for name in fields] == [getattr(record, name) for name in fields]
    assert again.to_payload()["format"] == FORMAT


def test_unknown_formats_and_foreign_files_are_refused(tmp_path, gan_checkpoint):
    payload = load_checkpoint(gan_checkpoint).to_payload()
    with pytest.raises(InputError, match="format 99"):
        upgrade({**payload, "format": 99})
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(InputError, match="not a coordgen checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(InputError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing")


def test_upgrade_fills_format1_gan_fields_with_the_values_they_had():
    model = asdict(GAN_PRESETS["tiled"].model)
    for name in ("mapping_layers", "first_gain", "mapping_tanh"):
        del model["generator"][name]
    payload = upgrade({"format": 1, "kind": "gan", "config": {"run": {"steps": 5}, "model": model}})
    generator = payload["config"]["model"]["generator"]
    assert payload["format"] == FORMAT
    old = (generator["mapping_layers"], generator["first_gain"], generator["mapping_tanh"])
    assert old == (0, 1.0, False)


OBJECT_LAYERS_UNUSED = {"objects": 1, "radial": False, "box_distance": False, "kind_coins": False,
                        "kind_warmup": 1000, "coin_box": "l4", "snap_centres": False, "offset_coords": True,
                        "chained_centres": False, "latent_masks": True, "centre_spread": 0.0,
                        "colour_coin": False, "colour_start": "drawn", "start_colours": []}


def test_upgrade_drops_the_object_layer_fields_a_generic_tiled_g_left_unused():
    model = asdict(GAN_PRESETS["tiled"].model)
    model["generator"].update(OBJECT_LAYERS_UNUSED)
    payload = upgrade({"format": 2, "kind": "gan", "config": {"run": {"steps": 5}, "model": model}})
    assert from_dict(GANConfig, payload["config"]["model"]) == GAN_PRESETS["tiled"].model
    vae = upgrade({"format": 2, "kind": "vae", "config": {"run": {}, "model": {"beta": 1.0}}})
    assert vae["config"]["model"] == {"beta": 1.0}


@pytest.mark.parametrize("field, value", [("objects", 2), ("radial", True), ("kind_coins", True),
                                          ("offset_coords", False), ("colour_start", "data"),
                                          ("centre_spread", 4.0)])
def test_a_checkpoint_whose_g_used_object_layers_is_refused_naming_the_commit_that_loads_it(
        tmp_path, field, value):
    model = asdict(GAN_PRESETS["tiled"].model)
    model["generator"].update({**OBJECT_LAYERS_UNUSED, field: value})
    payload = {"format": 2, "kind": "gan", "config": {"run": {"steps": 5}, "model": model}, "step": 1,
               "task": {}, "rng": {}, "data": {}}
    torch.save(payload, tmp_path / "old.pt")
    with pytest.raises(InputError, match=f"object layers \\({field}\\).*commit {LAST_OBJECT_LAYERS_COMMIT}"):
        load_checkpoint(tmp_path / "old.pt")


def test_load_task_returns_the_typed_checkpoint(vae_checkpoint):
    task, record = load_task(vae_checkpoint, torch.device("cpu"))
    assert record.kind == "vae" and record.run.data == "squares" and record.model.model.latent_dim == 4
    assert task.config == record.model


def test_families_map_kinds_and_configs():
    from gen.families import family, kind_of
    from gen.gan.config import GANConfig
    from gen.gan.task import GANTask
    from gen.vae.config import VAEConfig

    assert family("gan").task is GANTask and family("vae").config is VAEConfig
    assert kind_of(GANConfig()) == "gan" and kind_of(VAEConfig()) == "vae"
    with pytest.raises(InputError, match="unknown model kind"):
        family("flow")


def test_configs_missing_a_required_setting_are_bad_input():
    from gen.configs import RunConfig, from_dict

    assert from_dict(RunConfig, {"steps": 3}).steps == 3
    with pytest.raises(InputError, match="RunConfig settings lack steps"):  # no preset gave them
        from_dict(RunConfig, {"batch_size": 4})
    with pytest.raises(InputError, match="unknown RunConfig settings: colour"):
        from_dict(RunConfig, {"steps": 3, "colour": "red"})
