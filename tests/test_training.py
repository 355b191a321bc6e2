import io
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import lmdb
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gen import runs
from gen.checkpoint import load_checkpoint
from gen.cli import main
from gen.configs import RunConfig
from gen.data import natural
from gen.data.batches import TensorBatches, run_dataset
from gen.data.natural import LSUN, ImageFolder
from gen.gan.config import (
    GAN_PRESETS,
    DiscriminatorConfig,
    GANConfig,
    GeneratorConfig,
    gan_preset,
    resolve_placement,
)
from gen.sampling import sample_images
from gen.training import ScalarLog, lr_scale


def colour_image(colour, size=(80, 60)) -> Image.Image:
    return Image.new("RGB", size, colour)


def write_lsun(root, count=6) -> None:
    path = root / "bedroom_train_lmdb"
    path.mkdir(parents=True)
    with lmdb.open(str(path), map_size=1 << 24) as env, env.begin(write=True) as txn:
        for i in range(count):
            buffer = io.BytesIO()
            colour_image((40 * i, 200, 10)).save(buffer, format="WEBP" if i % 2 else "JPEG", quality=95)
            txn.put(f"{i:040x}".encode(), buffer.getvalue())


def test_lsun_reader_decodes_webp_and_jpeg(tmp_path):
    write_lsun(tmp_path)
    dataset = LSUN(tmp_path, resolution=32)
    assert len(dataset) == 6
    for i in (0, 1, 5):
        image, skipped = dataset[i]
        assert image.shape == (3, 32, 32) and skipped == 0
        expected = torch.tensor([40 * i, 200, 10]) / 127.5 - 1
        assert torch.allclose(image.mean(dim=(1, 2)), expected, atol=0.05)


def test_lsun_keys_are_cached_and_rebuilt_when_the_database_changes(tmp_path, key_cache, monkeypatch):
    write_lsun(tmp_path)
    first = LSUN(tmp_path, resolution=8).keys
    assert len(first) == 6 and len(list((key_cache / "lsun-keys").glob("*.npz"))) == 1

    def no_scan(*args, **kwargs):
        raise AssertionError("the cached index should be used")

    with monkeypatch.context() as patched:
        patched.setattr(natural, "open_lmdb", no_scan)
        assert natural.lmdb_keys(natural.find_lmdb(tmp_path)) == first
    time.sleep(0.01)
    writer = ("import lmdb, sys\n"  # another process: this one holds the database open for reading
              "with lmdb.open(sys.argv[1], map_size=1 << 24) as env, env.begin(write=True) as txn:\n"
              "    txn.put(b'f' * 40, b'new record')\n")
    subprocess.run([sys.executable, "-c", writer, str(tmp_path / "bedroom_train_lmdb")], check=True)
    assert len(LSUN(tmp_path, resolution=8).keys) == 7
    for index in (key_cache / "lsun-keys").glob("*.npz"):
        index.write_bytes(b"damaged")
    assert len(LSUN(tmp_path, resolution=8).keys) == 7
    monkeypatch.setenv("GEN_CACHE_DIR", str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("not a folder")  # an unwritable cache costs only the scan
    assert len(LSUN(tmp_path, resolution=8).keys) == 7


def test_lsun_reader_errors_name_the_layout(tmp_path):
    with pytest.raises(ValueError, match="bedroom_train_lmdb"):
        LSUN(tmp_path, 32)


def test_folder_reader_resizes_and_centre_crops(tmp_path):
    (tmp_path / "sub").mkdir()
    picture = np.zeros((40, 80, 3), dtype=np.uint8)
    picture[:, 20:60] = 255
    Image.fromarray(picture).save(tmp_path / "sub" / "a.png")
    colour_image((0, 0, 255)).save(tmp_path / "b.jpg")
    dataset = ImageFolder(tmp_path, resolution=16)
    assert [f.name for f in dataset.files] == ["b.jpg", "a.png"]
    (blue, _), (stripe, _) = dataset[0], dataset[1]
    assert torch.allclose(blue.mean(dim=(1, 2)), torch.tensor([-1.0, -1.0, 1.0]), atol=0.05)
    assert stripe.shape == (3, 16, 16)
    assert torch.all(stripe[:, :, 1:-1] > 0.9)


def test_tensor_batches_resume_where_they_left(tmp_path):
    images = torch.randint(0, 255, (10, 1, 4, 4), dtype=torch.uint8)
    batches = TensorBatches(images, 3, seed=1)
    next(batches)
    state = batches.state_dict()
    expected = next(batches)
    restored = TensorBatches(images, 3, seed=99)
    restored.load_state_dict(state)
    assert torch.equal(next(restored), expected)


def test_loader_batches_resume_mid_epoch(tmp_path):
    for i in range(7):
        colour_image((i * 30, 0, 0)).save(tmp_path / f"{i}.png")

    def batches():
        data = run_dataset(RunConfig(steps=1, data="folder", root=str(tmp_path), resolution=8))
        return data.batches(batch_size=2, seed=0, workers=0, device=torch.device("cpu"))

    first = batches()
    seen = [next(first) for _ in range(4)]
    again = batches()
    next(again)
    fresh = batches()
    fresh.load_state_dict(again.state_dict())
    for expected in seen[1:]:
        assert torch.equal(next(fresh), expected)


@pytest.mark.parametrize("data", ["squares", "shapes", "lsun", "folder"])
def test_gan_trains_on_every_source(tmp_path, data, tiny_run, tiny_gan):
    root = None
    if data == "lsun":
        write_lsun(tmp_path / "lsun", count=8)
        root = str(tmp_path / "lsun")
    if data == "folder":
        (tmp_path / "imgs").mkdir()
        for i in range(8):
            colour_image((i * 20, 50, 50)).save(tmp_path / "imgs" / f"{i}.png")
        root = str(tmp_path / "imgs")
    resolution = 64 if data in ("squares", "shapes") else 32
    run_dir = tmp_path / "run"
    checkpoint = runs.start(tiny_run(data=data, root=root, resolution=resolution), tiny_gan, run_dir)
    saved = load_checkpoint(checkpoint)
    assert saved.step == 4 and saved.kind == "gan"
    assert (run_dir / "samples.png").is_file() and list((run_dir / "tb").iterdir())
    assert json.loads((run_dir / "config.json").read_text())["run"]["data"] == data
    assert (run_dir / "metrics.json").is_file() == (data in ("squares", "shapes"))


@pytest.mark.parametrize("coord_g, coord_d", [("all", "all"), ("first", "none"), ("none", "first")])
def test_gan_trains_with_each_coordconv_placement(tmp_path, coord_g, coord_d, tiny_run):
    config = GANConfig(generator=GeneratorConfig(latent_dim=8, width=4, coord_layers=coord_g),
                       discriminator=DiscriminatorConfig(width=4, coord_layers=coord_d))
    runs.start(tiny_run(steps=2, eval_every=100), config, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["model"]
    assert saved["generator"]["coord_layers"] == coord_g
    assert saved["discriminator"]["coord_layers"] == coord_d


def assert_same_gan_weights(first: Path, second: Path) -> None:
    """The two GAN checkpoints hold bit-identical G, D and EMA weights."""
    a, b = load_checkpoint(first), load_checkpoint(second)
    for name in ("generator", "discriminator", "generator_ema"):
        for key, value in a.task["networks"][name].items():
            assert torch.equal(value, b.task["networks"][name][key]), (name, key)


def test_resume_continues_identically(tmp_path, tiny_run, tiny_gan):
    straight = runs.start(tiny_run(steps=6, eval_every=100), tiny_gan, tmp_path / "a")
    runs.start(tiny_run(steps=3, eval_every=100), tiny_gan, tmp_path / "b")
    resumed = runs.resume(tmp_path / "b", steps=6)
    assert load_checkpoint(resumed).step == 6
    assert_same_gan_weights(straight, resumed)


def test_evaluating_more_often_leaves_the_training_unchanged(tmp_path, tiny_run, tiny_gan):
    """Evaluation and sample grids draw from their own generators, so a run measured every
    step trains the same weights as one measured only at its end."""
    often = runs.start(tiny_run(steps=4, eval_every=1, image_every=1), tiny_gan, tmp_path / "often")
    once = runs.start(tiny_run(steps=4, eval_every=4, image_every=4), tiny_gan, tmp_path / "once")
    assert len(list((tmp_path / "often").glob("metrics-*.json"))) == 4
    assert_same_gan_weights(often, once)


def test_lr_rampdown_falls_linearly_over_the_last_steps(tmp_path, tiny_run, tiny_gan):
    assert [lr_scale(s, 10, 0.3) for s in (1, 7, 8, 9, 10)] == pytest.approx([1, 1, 1, 2 / 3, 1 / 3])
    assert lr_scale(10, 10, 0.0) == 1.0
    with pytest.raises(ValueError, match="lr_rampdown"):
        lr_scale(1, 10, 1.5)
    run = tiny_run(steps=4, eval_every=100, lr_rampdown=0.5)
    checkpoint = runs.start(run, tiny_gan, tmp_path / "a")
    groups = load_checkpoint(checkpoint).task["optimizers"]["generator"]["param_groups"]
    assert groups[0]["initial_lr"] == tiny_gan.g_lr  # kept, so a resumed run scales the same base
    assert groups[0]["lr"] == pytest.approx(tiny_gan.g_lr / 2)  # step 4 of 4, ramp over 2 steps


def test_scalar_log_means_each_scalar_over_the_steps_that_reported_it():
    log = ScalarLog()
    log.add({"loss": torch.tensor(1.0), "r1": torch.tensor(4.0)})
    for loss in (2.0, 3.0, 6.0):
        log.add({"loss": torch.tensor(loss)})
    assert log.flush() == {"loss": 3.0, "r1": 4.0}  # r1 came once in 4 steps: its value, not a quarter
    log.add({"loss": torch.tensor(5.0)})
    assert log.flush() == {"loss": 5.0}


def test_a_failed_evaluation_raises_its_error_after_its_step_is_saved(tmp_path, tiny_run, tiny_gan):
    prepared = runs.prepare_start(tiny_run(steps=4, eval_every=2), tiny_gan, tmp_path / "a")

    def evaluate(task):
        raise ValueError("metrics broke")

    with pytest.raises(ValueError, match="metrics broke"):
        replace(prepared, evaluate=evaluate).train()
    assert load_checkpoint(tmp_path / "a").step == 2  # the step evaluated is saved first
    assert not list((tmp_path / "a").glob("metrics*.json"))


def test_same_seed_same_run(tmp_path, tiny_run, tiny_gan):
    a = runs.start(tiny_run(steps=2, eval_every=100), tiny_gan, tmp_path / "a")
    b = runs.start(tiny_run(steps=2, eval_every=100), tiny_gan, tmp_path / "b")
    weights_a = load_checkpoint(a).task["networks"]["generator"]
    weights_b = load_checkpoint(b).task["networks"]["generator"]
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


def test_start_refuses_to_overwrite_a_run(tmp_path, tiny_run, tiny_gan):
    runs.start(tiny_run(steps=2, eval_every=100), tiny_gan, tmp_path / "a")
    with pytest.raises(ValueError, match="--resume"):
        runs.start(tiny_run(steps=2), tiny_gan, tmp_path / "a")


def test_samples_have_shape_range_and_seed(tmp_path, tiny_run, tiny_gan):
    checkpoint = runs.start(tiny_run(steps=2, eval_every=100), tiny_gan, tmp_path / "a")
    first = sample_images(checkpoint, 5, seed=3, device="cpu")
    assert first.shape == (5, 64, 64, 1) and first.dtype == np.uint8
    assert np.array_equal(first, sample_images(checkpoint, 5, seed=3, device="cpu"))
    assert not np.array_equal(first, sample_images(checkpoint, 5, seed=4, device="cpu"))


def test_cli_train_sample_and_errors(tmp_path):
    runner = CliRunner()
    run_dir = tmp_path / "run"
    args = ["train", "gan", "--coordconv", "--steps", "2", "--batch-size", "4", "--g-width", "4",
            "--d-width", "4", "--latent-dim", "8", "--ema-rampup", "0.5", "--eval-every", "100",
            "--device", "cpu", "--out", str(run_dir)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert str(run_dir) in result.output
    config = json.loads((run_dir / "config.json").read_text())["model"]
    assert config["ema_rampup"] == 0.5
    assert config["generator"]["coord_layers"] == "all" and config["discriminator"]["coord_layers"] == "all"
    assert config["generator"]["arch"] == "tiled"  # the authors' CoordConv generator is the default
    tiled = GAN_PRESETS["tiled"].model
    assert (config["d_lr"], config["g_steps"]) == (tiled.d_lr, tiled.g_steps)
    result = runner.invoke(main, [*args[:-1], str(tmp_path / "d-only"), "--coord-in", "d"])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "d-only" / "config.json").read_text())["model"]
    assert config["generator"]["arch"] == "dcgan" and config["generator"]["coord_layers"] == "none"
    assert config["discriminator"]["coord_layers"] == "all" and config["g_steps"] == 1
    for out in ("s.npz", "s.png"):
        result = runner.invoke(main, ["sample", str(run_dir), "--n", "9", "--out", str(tmp_path / out)])
        assert result.exit_code == 0, result.output
    with np.load(tmp_path / "s.npz") as arrays:
        assert arrays["images"].shape == (9, 64, 64, 1)

    result = runner.invoke(main, ["train", "gan", "--resume", str(run_dir), "--batch-size", "8"])
    assert result.exit_code == 2 and "--batch-size" in result.output
    result = runner.invoke(main, ["train", "gan", "--coordconv", "--coord-layers", "first",
                                  "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--coord-layers first needs a DCGAN G" in result.output
    assert not (tmp_path / "x").exists()
    result = runner.invoke(main, ["train", "gan", "--data", "lsun", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--root" in result.output
    assert not (tmp_path / "x").exists()
    result = runner.invoke(main, ["sample", str(tmp_path / "s.npz"), "--out", str(tmp_path / "y.png")])
    assert result.exit_code == 2 and "checkpoint" in result.output


def test_default_config_per_generator_architecture():
    conv, coord = gan_preset(), gan_preset(coordconv=True)
    assert conv.model == GANConfig()  # the dataclass defaults are what `gen train gan` trains
    assert conv.model.generator.arch == "dcgan" and conv.model.generator.output_bias < 0
    assert conv.model.g_steps == 1
    assert coord.model.generator.arch == "tiled" and coord.model.discriminator.coord_layers == "all"
    assert coord.model.d_lr < conv.model.d_lr and coord.model.g_steps == 2
    assert coord.model.discriminator.width > conv.model.discriminator.width
    assert coord.schedule.steps < conv.schedule.steps  # a tiled step costs more
    assert coord.schedule.lr_rampdown > 0 == conv.schedule.lr_rampdown
    with pytest.raises(ValueError, match="unknown generator arch"):
        gan_preset(arch="stylegan")


def test_preset_overrides_replace_only_given_fields():
    preset = gan_preset(coordconv=True, generator={"width": 3, "latent_dim": None}, d_lr=1e-3, g_steps=None)
    tiled = GAN_PRESETS["tiled"].model
    assert preset.model.generator.width == 3
    assert preset.model.generator.latent_dim == tiled.generator.latent_dim
    assert preset.model.d_lr == 1e-3 and preset.model.g_steps == tiled.g_steps
    run = preset.run_config(batch_size=8)
    schedule = GAN_PRESETS["tiled"].schedule
    assert (run.steps, run.lr_rampdown, run.batch_size) == (schedule.steps, schedule.lr_rampdown, 8)
    assert preset.run_config(steps=7).steps == 7


def test_train_help_states_each_presets_default_steps():
    """The help text is generated from the presets (with no torch import)."""
    result = CliRunner().invoke(main, ["train", "gan", "--help"], terminal_width=400)
    steps = {arch: preset.schedule.steps for arch, preset in GAN_PRESETS.items()}
    text = " ".join(result.output.split())
    assert f"GAN {steps['dcgan']} (dcgan preset), {steps['tiled']} (tiled preset)" in text


def test_coordconv_switches_resolve_to_a_generator_and_placements():
    assert resolve_placement(False) == ("dcgan", "none", "none")
    assert resolve_placement(True) == ("tiled", "all", "all")
    assert resolve_placement(True, "d") == ("dcgan", "none", "all")
    assert resolve_placement(True, "g", "first", "dcgan") == ("dcgan", "first", "none")
    assert resolve_placement(False, arch="tiled") == ("tiled", "none", "none")
    with pytest.raises(ValueError, match="--coord-layers first needs a DCGAN G"):
        resolve_placement(True, "both", "first")


@pytest.mark.parametrize(("rampup", "step", "beta"),
                         [(None, 0, 0.1), (0.5, 0, 0.8), (0.5, 190, 0.99), (0.5, 10**6, 0.999)])
def test_ema_horizon_ramps_up_until_ema_beta_caps_it(tiny_gan, rampup, step, beta):
    """Horizon ema_rampup * (step + 10): the default's (0 + 10) / 9 steps at the start, then
    5 and 100 steps with ema_rampup 0.5, capped at 1 / (1 - 0.999) = 1000."""
    from gen.gan.task import GANTask

    config = tiny_gan if rampup is None else replace(tiny_gan, ema_rampup=rampup)
    task = GANTask(config, torch.device("cpu"))
    live = next(task.generator.parameters())
    ema = next(task.generator_ema.parameters())
    with torch.no_grad():
        live.add_(1.0)
    before = ema.detach().clone()
    task.update_ema(step)
    assert torch.allclose(ema, beta * before + (1 - beta) * live.detach(), atol=1e-6)


def test_run_dataset_builds_each_source_one_way(tmp_path):
    uniform = run_dataset(RunConfig(steps=1, split="uniform", seed=3))
    assert uniform.geometry == "squares" and uniform.channels == 1
    assert len(uniform.train_images()) == 3136 - 627 and len(uniform.held_out()) == 627
    assert run_dataset(RunConfig(steps=1)).held_out() is None
    shapes = run_dataset(RunConfig(steps=1, data="shapes", seed=1))
    assert shapes.geometry == "shapes" and shapes.channels == 3 and shapes.held_out() is None
    assert torch.equal(shapes.train_images()[:5], run_dataset(RunConfig(steps=1, data="shapes", seed=1))
                       .train_images()[:5])
    for i in range(2):
        colour_image((i * 30, 0, 0)).save(tmp_path / f"{i}.png")
    folder = run_dataset(RunConfig(steps=1, data="folder", root=str(tmp_path), resolution=32))
    assert folder.geometry is None and folder.channels == 3 and len(folder.files) == 2
    with pytest.raises(ValueError, match="not a generated set"):
        folder.train_images()
    with pytest.raises(ValueError, match="needs --root"):
        run_dataset(RunConfig(steps=1, data="lsun"))


def test_run_config_checks_its_schedule():
    with pytest.raises(ValueError, match="steps must be at least 1"):
        RunConfig(steps=0)
    with pytest.raises(ValueError, match="lr_rampdown"):
        RunConfig(steps=10, lr_rampdown=2.0)


def test_gan_training_fakes_are_drawn_up_to_the_jitter_off_the_grid(tiny_gan):
    """Each training fake gets its own offset within the jitter (D step and G steps alike),
    the EMA G that samples draws on the grid, and a rank's fakes are its slice of the
    global batch's, offsets included."""
    from gen.distributed import World
    from gen.gan.task import GANTask

    config = replace(tiny_gan, generator=GeneratorConfig(arch="tiled", latent_dim=8, width=2,
                                                         subpixel_jitter=0.25))
    torch.manual_seed(0)
    task = GANTask(config, torch.device("cpu"))
    shifts = []
    forward = task.generator.forward
    task.generator.forward = lambda z, shift=None: shifts.append(shift) or forward(z, shift)
    task.train_step(torch.rand(6, 1, 64, 64) * 2 - 1, 0)
    assert len(shifts) == 1 + config.g_steps
    drawn = torch.stack(shifts)
    assert drawn.shape == (1 + config.g_steps, 6, 2) and drawn.abs().max() <= 0.25 and drawn.std() > 0.05
    z = torch.randn(3, 8)
    assert torch.equal(task.sample(z), task.generator_ema.render(z).permute(0, 3, 1, 2))

    fakes = {}
    for rank, size in [(0, 1), (1, 2)]:
        torch.manual_seed(0)
        ranked = GANTask(config, torch.device("cpu"), seed=3)
        ranked.world = World(rank, size)
        with torch.no_grad():
            fakes[size] = ranked.generate(8)
    # 1e-5: a batch of 4 and one of 8 take different fp32 matmul kernels (2e-6 apart on some CPUs)
    assert fakes[2].shape == (4, 1, 64, 64) and torch.allclose(fakes[2], fakes[1][4:], atol=1e-5)
    torch.manual_seed(0)
    on_grid = GANTask(replace(config, generator=replace(config.generator, subpixel_jitter=0.0)),
                      torch.device("cpu"), seed=3)
    with torch.no_grad():
        assert not torch.allclose(on_grid.generate(8)[:4], fakes[1][:4], atol=1e-3)
