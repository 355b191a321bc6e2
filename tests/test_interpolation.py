import json
import math

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gen.checkpoint import load_task
from gen.cli import main
from gen.configs import RunConfig
from gen.data.notsoclevr import make_squares, render_shapes, render_squares
from gen.interpolation.endpoints import (
    dataset_images,
    encoded_keyframes,
    encoded_latents,
    fit_channels,
    load_endpoint_image,
)
from gen.interpolation.paths import (
    MODES,
    interpolate,
    keyframe_path,
    lerp,
    normlerp,
    random_keyframes,
    slerp,
)
from gen.interpolation.score import (
    CLASSES,
    MIN_PIXELS,
    format_scores,
    score_model,
    score_paths,
    score_segments,
    valid_latents,
)
from gen.video import pad_to_block, strip_picture, upscale, write_animation

CPU = torch.device("cpu")


def gaussians(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---- path maths ----

@pytest.mark.parametrize("mode", MODES)
def test_endpoints_are_exact_and_shapes_broadcast(mode):
    a, b = gaussians(5, 16), 3 * gaussians(5, 16, seed=1)
    path = interpolate(a, b, torch.linspace(0, 1, 7)[:, None], mode)
    assert path.shape == (7, 5, 16) and path.dtype == a.dtype
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    assert interpolate(a, b, 0.5, mode).shape == (5, 16)


def test_slerp_keeps_norms_and_turns_at_constant_speed():
    a, b = gaussians(4, 32), gaussians(4, 32, seed=1)
    b = b / b.norm(dim=-1, keepdim=True) * a.norm(dim=-1, keepdim=True)  # equal norms: stay on the sphere
    t = torch.linspace(0, 1, 9)[:, None]
    path = slerp(a, b, t)
    assert torch.allclose(path.norm(dim=-1), a.norm(dim=-1).expand(9, 4), rtol=1e-5)
    unit = path / path.norm(dim=-1, keepdim=True)
    angles = torch.acos((unit[1:] * unit[:-1]).sum(-1).clamp(-1, 1))
    assert torch.allclose(angles, angles[0].expand_as(angles), atol=1e-3)
    uneven = slerp(a, 2 * b, t).norm(dim=-1)  # norms blend linearly when they differ
    assert torch.allclose(uneven, (1 - t) * a.norm(dim=-1) + t * 2 * b.norm(dim=-1), rtol=1e-5)


def test_lerp_shrinks_gaussian_latents_and_normlerp_restores_the_norm():
    a, b = gaussians(64, 128), gaussians(64, 128, seed=1)
    middle_norm = lerp(a, b, 0.5).norm(dim=-1)
    ends_norm = (a.norm(dim=-1) + b.norm(dim=-1)) / 2
    assert (middle_norm < 0.8 * ends_norm).all()  # independent: ~1/sqrt(2) of the ends' norm
    assert torch.allclose(normlerp(a, b, 0.5).norm(dim=-1), ends_norm, rtol=1e-5)


def test_normlerp_is_the_authors_formula():
    a, b = gaussians(10).numpy().astype(np.float64), gaussians(10, seed=1).numpy().astype(np.float64)
    t = 0.3
    line = (1 - t) * a + t * b
    expected = line / np.linalg.norm(line) * ((1 - t) * np.linalg.norm(a) + t * np.linalg.norm(b))
    got = normlerp(torch.from_numpy(a), torch.from_numpy(b), t).numpy()
    assert np.allclose(got, expected, rtol=1e-12)


def test_slerp_is_safe_for_parallel_antiparallel_and_zero_vectors():
    x = gaussians(16)
    t = torch.linspace(0, 1, 5)
    parallel = slerp(x, 3 * x, t)
    assert torch.allclose(parallel, (1 + 2 * t)[:, None] * x, rtol=1e-5, atol=1e-6)
    opposite = slerp(x, -x, t)
    assert torch.isfinite(opposite).all()
    assert torch.allclose(opposite.norm(dim=-1), x.norm().expand(5), rtol=1e-5)
    assert abs(float(opposite[2] @ x)) < 1e-4 * float(x @ x)  # halfway it is orthogonal to both ends
    zero = torch.zeros(16)
    assert torch.allclose(slerp(zero, x, t), lerp(zero, x, t))
    assert torch.allclose(slerp(x, zero, t), lerp(x, zero, t))
    one_d = slerp(torch.tensor([1.0]), torch.tensor([-2.0]), t)
    assert torch.allclose(one_d[:, 0], torch.tensor([1.0, 0.25, -0.5, -1.25, -2.0]))
    assert torch.equal(normlerp(x, -x, 0.5), torch.zeros(16))  # no direction to rescale


def test_keyframe_loop_passes_through_keyframes_and_closes():
    keyframes = gaussians(3, 2, 8)
    frames = 4
    path = keyframe_path(keyframes, frames, "lerp")
    assert path.shape == (12, 2, 8)
    for i in range(3):
        assert torch.equal(path[i * frames], keyframes[i])
    closing = (path[0] - path[-1]).norm(dim=-1)  # the step from the last frame back to the first
    last_steps = (path[-3:] - path[-4:-1]).norm(dim=-1)
    assert torch.allclose(closing.expand_as(last_steps), last_steps, rtol=1e-5)
    open_path = keyframe_path(keyframes, frames, "slerp", loop=False)
    assert open_path.shape == (9, 2, 8) and torch.equal(open_path[-1], keyframes[-1])


def test_keyframe_path_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least 2 keyframes"):
        keyframe_path(gaussians(1, 1, 4), 3)
    with pytest.raises(ValueError, match="frames per segment"):
        keyframe_path(gaussians(2, 1, 4), 0)
    with pytest.raises(ValueError, match="unknown interpolation mode"):
        keyframe_path(gaussians(2, 1, 4), 3, "cubic")


def test_random_keyframes_are_seeded_and_follow_the_latent_distribution(gan_checkpoint):
    task, _ = load_task(gan_checkpoint, CPU)
    first = random_keyframes(task, 3, 5, seed=7)
    assert first.shape == (3, 5, 8)
    assert torch.equal(first, random_keyframes(task, 3, 5, seed=7))
    assert not torch.equal(first, random_keyframes(task, 3, 5, seed=8))
    task.config.latent = "uniform"
    uniform = random_keyframes(task, 3, 5, seed=7)
    assert uniform.min() >= -1 and uniform.max() <= 1


# ---- endpoint images ----

def test_endpoint_images_from_files_arrays_and_dataset_indices(tmp_path):
    config = RunConfig(steps=1, data="squares")
    squares = make_squares().images.permute(0, 2, 3, 1).numpy()
    assert np.array_equal(load_endpoint_image("57", config), squares[57])
    np.savez(tmp_path / "set.npz", images=squares[:10])
    assert np.array_equal(load_endpoint_image(f"{tmp_path / 'set.npz'}:3", config), squares[3])
    Image.fromarray(np.repeat(squares[9], 3, axis=-1)).save(tmp_path / "rgb.png")
    picture = load_endpoint_image(str(tmp_path / "rgb.png"), config)
    assert torch.equal(fit_channels(picture, (1, 64, 64), "rgb.png")[0],
                       torch.from_numpy(squares[9]).permute(2, 0, 1).float() / 127.5 - 1)
    with pytest.raises(ValueError, match="out of range"):
        load_endpoint_image("3136", config)
    with pytest.raises(ValueError, match="does not exist"):
        load_endpoint_image(str(tmp_path / "missing.png"), config)
    with pytest.raises(ValueError, match="squares or shapes model"):
        load_endpoint_image("1", RunConfig(steps=1, data="lsun"))
    with pytest.raises(ValueError, match="the model makes 64 x 64"):
        fit_channels(np.zeros((32, 32, 1), np.uint8), (1, 64, 64), "small.png")


def test_encoded_keyframes_need_a_vae(gan_checkpoint, vae_checkpoint):
    vae, saved = load_task(vae_checkpoint, CPU)
    keyframes = encoded_keyframes(vae, ["0", "100"], saved.run, CPU)
    images = make_squares().float_images()[[0, 100]]
    assert keyframes.shape == (2, 1, 4) and torch.equal(keyframes[:, 0], vae.encode(images))
    gan, saved = load_task(gan_checkpoint, CPU)
    with pytest.raises(ValueError, match="needs a VAE"):
        encoded_keyframes(gan, ["0", "1"], saved.run, CPU)


# ---- rendering ----

def test_upscale_and_padding():
    pixels = np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3)
    big = upscale(pixels, 3)
    assert big.shape == (1, 6, 6, 3) and (big[0, :3, :3] == pixels[0, 0, 0]).all()
    padded = pad_to_block(np.zeros((33, 50, 3), np.uint8))
    assert padded.shape == (48, 64, 3) and (padded[33:] == 128).all() and (padded[:33, :50] == 0).all()


def frame_chunks(frames=7, paths=6, seed=0):
    images = torch.rand(frames, paths, 1, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return images, [images[:3], images[3:]]


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_videos_decode_back_to_the_frames(tmp_path, suffix):
    images, chunks = frame_chunks()
    out = tmp_path / f"video{suffix}"
    assert write_animation(out, iter(chunks), columns=3, fps=10, scale=2) == 7
    video = iio.imread(out, index=None)
    height, width = 2 * (32 + 2) + 2, 3 * (32 + 2) + 2  # 2 x 3 grid of 32 px cells, 2 px padding
    if suffix == ".mp4":
        assert video.shape == (7, 80, 112, 3)  # padded up to whole 16 x 16 blocks
    else:
        assert video.shape == (7, height, width, 3)
    cell = video[4, 2 + 34:2 + 34 + 32, 2 + 2 * 34:2 + 2 * 34 + 32, 0].astype(float)  # frame 4, path 5
    expected = np.repeat(np.repeat(((images[4, 5, 0] + 1) * 127.5).round().numpy(), 2, 0), 2, 1)
    assert np.abs(cell - expected).mean() < (12 if suffix == ".mp4" else 0.5)
    assert not list(tmp_path.glob(".*tmp*"))


def test_png_strip_has_a_row_per_path(tmp_path):
    images, chunks = frame_chunks(frames=5, paths=2)
    out = tmp_path / "strip.png"
    assert write_animation(out, iter(chunks), columns=2, fps=10, scale=1) == 5
    picture = iio.imread(out)
    assert picture.shape == (2 * 18 + 2, 5 * 18 + 2, 3)
    assert np.array_equal(picture, strip_picture(images))
    cell = picture[2 + 18:2 + 18 + 16, 2 + 3 * 18:2 + 3 * 18 + 16, 0]  # path 1, frame 3
    assert np.array_equal(cell, ((images[3, 1, 0] + 1) * 127.5).round().numpy().astype(np.uint8))


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="must end in"):
        write_animation(tmp_path / "video.avi", iter(frame_chunks()[1]), 3, 10, 1)


# ---- move-vs-fade score ----

def squares_at(xs, y=30):
    return render_squares(torch.tensor([[x, y] for x in xs])).float() / 127.5 - 1


def blank(count=1):
    return -torch.ones(count, 1, 64, 64)


def test_score_of_a_sliding_a_jumping_and_a_fading_square():
    slide = squares_at(range(10, 51, 4))  # 11 frames, 10 steps of 4 px
    jump = squares_at([10] * 5 + [50] * 6)
    a, b = squares_at([10]), squares_at([50])
    brightness = [1, 1, 0.8, 0.6, 0.4, 0.2, 0.4, 0.6, 0.8, 1, 1]  # A fades out, then B fades in
    fade = torch.cat([-1 + ((a if i < 5 else b) + 1) * level for i, level in enumerate(brightness)])
    overlap = torch.cat([torch.maximum(a if i < 7 else blank(), b if i > 3 else blank()) for i in range(11)])
    scores = score_paths(torch.stack([slide, jump, fade, overlap]), "squares", value_range=(-1, 1))

    assert scores.valid_fraction.tolist() == [1, 1, 8 / 11, 8 / 11]
    assert np.allclose(scores.mean_step[:2], [0.1, 0.1])
    assert np.allclose(scores.max_step[:2], [0.1, 1.0])
    assert scores.mean_step[2] == scores.max_step[2] == 0  # it never moved: it faded
    assert scores.vanishes.tolist() == [0, 0, 1, 0]
    assert scores.doubles.tolist() == [0, 0, 0, 1]
    assert [CLASSES[c] for c in scores.classes()] == ["move", "teleport", "fade", "fade"]
    summary = scores.summary()
    assert summary["move_fraction"] == summary["teleport_fraction"] == 0.25
    assert summary["fade_fraction"] == 0.5
    assert summary["smooth_step"] == 0.1 and summary["paths"] == 4 and summary["frames_per_path"] == 11
    assert "paths: teleport" in format_scores(summary)


def test_score_ignores_specks_but_validity_does_not():
    slide = squares_at(range(10, 51, 4))
    slide[3:6, 0, 50, 5] = 1  # a stray pixel for three frames
    scores = score_paths(slide[None], "squares", value_range=(-1, 1))
    assert scores.doubles[0] == 0 and np.isclose(scores.max_step[0], 0.1)
    assert scores.valid_fraction[0] == pytest.approx(8 / 11)
    big_speck = squares_at(range(10, 51, 4))
    big_speck[3:6, 0, 50:53, 5:8] = 1  # 9 pixels: an object
    assert MIN_PIXELS == 9 and score_paths(big_speck[None], "squares", value_range=(-1, 1)).doubles[0] == 1


def test_score_leaves_unmeasurable_paths_undefined():
    start_blank = torch.cat([blank(), squares_at(range(14, 51, 4))])
    still = squares_at([30] * 11)
    scores = score_paths(torch.stack([start_blank, still]), "squares", value_range=(-1, 1))
    assert np.isnan(scores.max_step).all() and np.isnan(scores.mean_step).all()
    assert scores.vanishes.tolist() == [0, 0]  # appearing from nothing is not a vanish
    assert [CLASSES[c] for c in scores.classes()] == ["unmeasured", "unmeasured"]
    with pytest.raises(ValueError, match="at least 5 frames"):
        score_paths(still[None, :4], "squares", value_range=(-1, 1))
    with pytest.raises(ValueError, match="squares or shapes"):
        score_paths(still[None], "lsun")


def test_score_on_shapes_takes_the_worst_object():
    steps = torch.arange(11)
    red = torch.stack([15 + 3 * steps, torch.full_like(steps, 15)], 1)  # slides 30 px
    blue = torch.stack([torch.where(steps < 5, 20, 50), torch.full_like(steps, 45)], 1)  # jumps 30 px
    frames = render_shapes(torch.stack([red, blue], 1), torch.zeros(11, 2, dtype=torch.long))
    scores = score_paths(frames.permute(0, 2, 3, 1)[None].numpy(), "shapes")
    assert scores.valid_fraction[0] == 1
    assert np.isclose(scores.max_step[0], 1.0) and np.isclose(scores.mean_step[0], 0.1)
    assert CLASSES[scores.classes()[0]] == "teleport"


class SquareTask:
    """A stand-in model: latent (x, y) in [-1, 1] draws a square; jump=True snaps it to
    one of two positions, a teleport whenever x changes sign."""

    def __init__(self, jump: bool = False, blank: bool = False) -> None:
        self.jump, self.blank = jump, blank

    def latents(self, n, generator):
        return torch.rand(n, 2, generator=generator, device=generator.device) * 2 - 1

    def sample(self, latents):
        x, y = latents.clamp(-1, 1).T
        if self.jump:
            x = torch.where(x < 0, -0.8, 0.8)
        centres = (torch.stack([x, y], 1) * 25 + 32).round().long()
        images = render_squares(centres).float() / 127.5 - 1
        return -torch.ones_like(images) if self.blank else images


def test_score_model_tells_moving_from_teleporting_models():
    moving, rate = score_model(SquareTask(), "squares", 40, 16, "lerp", seed=0, device=CPU)
    assert rate == 1 and len(moving) == 40
    summary = moving.summary()
    assert summary["valid_fraction"] == 1 and summary["move_fraction"] == 1
    assert summary["max_step"] < 0.2
    jumping, _ = score_model(SquareTask(jump=True), "squares", 40, 16, "lerp", seed=0, device=CPU)
    summary = jumping.summary()
    assert summary["teleport_fraction"] > 0.3  # paths whose x changes sign
    assert summary["teleport_fraction"] + summary["move_fraction"] + summary["unmeasured_fraction"] == 1


def test_valid_latents_are_seeded_and_refuse_hopeless_models():
    first, _ = valid_latents(SquareTask(), 10, "squares", seed=3, device=CPU)
    again, _ = valid_latents(SquareTask(), 10, "squares", seed=3, device=CPU)
    assert first.shape == (10, 2) and torch.equal(first, again)
    with pytest.raises(ValueError, match="only 0 of"):
        valid_latents(SquareTask(blank=True), 4, "squares", seed=0, device=CPU)


# ---- command line ----

def test_cli_gan_video_is_seeded_and_sized(tmp_path, gan_checkpoint):
    runner = CliRunner()
    args = ["interpolate", str(gan_checkpoint), "--grid", "2x3", "--keyframes", "2",
            "--frames-per-segment", "3", "--scale", "1", "--device", "cpu"]
    result = runner.invoke(main, [*args, "--out", str(tmp_path / "a.mp4")])
    assert result.exit_code == 0, result.output
    assert "6 frames of 2 x 3 paths" in result.output
    assert iio.imread(tmp_path / "a.mp4", index=None).shape == (6, 144, 208, 3)  # 134 x 200 padded
    for name, seed in [("b.png", "0"), ("c.png", "0"), ("d.png", "1")]:
        result = runner.invoke(main, [*args, "--seed", seed, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "b.png").read_bytes() == (tmp_path / "c.png").read_bytes()
    assert (tmp_path / "b.png").read_bytes() != (tmp_path / "d.png").read_bytes()
    assert iio.imread(tmp_path / "b.png").shape == (6 * 66 + 2, 6 * 66 + 2, 3)


def test_cli_vae_from_images_with_score(tmp_path, vae_checkpoint):
    np.savez(tmp_path / "set.npz", images=make_squares().images[:5].permute(0, 2, 3, 1).numpy())
    out, report = tmp_path / "v.mp4", tmp_path / "score.json"
    result = CliRunner().invoke(main, [
        "interpolate", str(vae_checkpoint), "--from-images", "0", f"{tmp_path / 'set.npz'}:4",
        "--frames-per-segment", "4", "--mode", "normlerp", "--out", str(out), "--score",
        "--json", str(report), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert iio.imread(out, index=None).shape == (8, 128, 128, 3)  # A -> B -> A; one image: no grid border
    assert "paths: move" in result.output and "two images' encodings" in result.output
    numbers = json.loads(report.read_text())
    assert numbers["summary"]["paths"] == 1 and numbers["summary"]["frames_per_path"] == 5
    assert numbers["mode"] == "normlerp" and len(numbers["per_path"]["class"]) == 1
    assert math.isclose(sum(numbers["summary"][f"{c}_fraction"] for c in CLASSES), 1)


class EncodingTask(SquareTask):
    """SquareTask with an encoder that reads each square's centre back off the image."""

    def encode(self, images):
        on = (images[:, 0] > 0).float()
        rows, columns = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
        area = on.sum((1, 2))
        centres = torch.stack([(on * columns).sum((1, 2)) / area, (on * rows).sum((1, 2)) / area], 1)
        return (centres - 32) / 25


def test_encoded_latents_are_seeded_encodings_of_data_images():
    images = make_squares().images
    assert torch.equal(dataset_images(RunConfig(steps=1, data="squares", split="quadrant")), images)
    with pytest.raises(ValueError, match="trained on lsun"):
        dataset_images(RunConfig(steps=1, data="lsun"))
    codes = encoded_latents(EncodingTask(), images, 12, seed=5, device=CPU, batch=5)
    assert codes.shape == (12, 2) and torch.equal(codes, encoded_latents(EncodingTask(), images, 12, 5, CPU))
    redrawn = ((EncodingTask().sample(codes) + 1) * 127.5).round().to(torch.uint8)
    known = {image.numpy().tobytes() for image in images}
    assert all(image.numpy().tobytes() in known for image in redrawn)  # each code is a real image's
    scores = score_segments(EncodingTask(), codes[:6], codes[6:], 8, "lerp", "squares", CPU)
    assert scores.summary()["valid_fraction"] == 1
    with pytest.raises(ValueError, match="needs a VAE checkpoint"):
        encoded_latents(SquareTask(), images, 2, seed=0, device=CPU)


def test_cli_vae_scores_paths_between_data_encodings(tmp_path, vae_checkpoint):
    report = tmp_path / "score.json"
    result = CliRunner().invoke(main, ["interpolate", str(vae_checkpoint), "--score", "--endpoints", "data",
                                       "--paths", "6", "--frames-per-segment", "4", "--json", str(report),
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "encodings of random pairs of the 3136 squares images" in result.output
    numbers = json.loads(report.read_text())
    assert numbers["endpoints"] == "data" and numbers["summary"]["paths"] == 6
    assert numbers["endpoint_valid_rate"] is None


@pytest.mark.parametrize("extra, message", [
    (["--out", "{tmp}/v.avi"], "must end in .mp4, .gif, .png"),
    ([], "nothing to do"),
    (["--out", "{tmp}/v.gif", "--json", "{tmp}/s.json"], "--paths, --endpoints and --json go with --score"),
    (["--score", "--endpoints", "data"], "--endpoints data needs a VAE checkpoint"),
    (["--out", "{tmp}/v.gif", "--grid", "3by3"], "--grid must be ROWSxCOLUMNS"),
    (["--out", "{tmp}/v.gif", "--from-images", "0", "1"], "needs a VAE checkpoint"),
    (["--score", "--paths", "2", "--out", "{tmp}/v.gif"], "only 0 of"),
    (["--score", "--frames-per-segment", "3"], "at least 4"),
])
def test_cli_gan_errors(tmp_path, gan_checkpoint, extra, message):
    result = CliRunner().invoke(main, ["interpolate", str(gan_checkpoint), "--device", "cpu",
                                       *[arg.format(tmp=tmp_path) for arg in extra]])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("images, extra, message", [
    (["0", "3136"], [], "out of range"),
    (["0", "missing.png"], [], "does not exist"),
    (["0", "1"], ["--grid", "2x2"], "drop --keyframes, --grid, --paths and --endpoints"),
])
def test_cli_vae_errors(tmp_path, vae_checkpoint, images, extra, message):
    result = CliRunner().invoke(main, ["interpolate", str(vae_checkpoint), "--out", str(tmp_path / "v.gif"),
                                       "--from-images", *images, *extra, "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "v.gif").exists()


def test_interpolate_checkpoint_from_python(tmp_path, vae_checkpoint):
    from gen.interpolation import interpolate_checkpoint

    result = interpolate_checkpoint(vae_checkpoint, tmp_path / "v.png", score=True, frames_per_segment=4,
                                    grid=(1, 2), keyframes=2, paths=3, endpoints="data", device="cpu")
    assert result.frames == 8 and (tmp_path / "v.png").is_file()
    assert len(result.scores) == 3 and result.record["endpoints"] == "data"
    assert result.endpoints.startswith("encodings of random pairs of the 3136 squares")
    with pytest.raises(ValueError, match="nothing to do"):
        interpolate_checkpoint(vae_checkpoint)


def test_path_functions_import_without_the_model_machinery():
    import subprocess
    import sys

    code = ("import sys; from gen.interpolation import slerp; "
            "assert 'gen.interpolation.render' not in sys.modules and 'scipy' not in sys.modules; "
            "from gen.interpolation import interpolate_checkpoint; "
            "assert interpolate_checkpoint.__module__ == 'gen.interpolation.render'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
