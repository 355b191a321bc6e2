import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gen.cli import main
from gen.data import make_shapes, make_squares

KEYS = {"n_samples", "valid_fraction", "position_coverage", "coverage_ratio", "js_divergence",
        "wasserstein", "quadrant_mass", "density", "coverage_knn"}


@pytest.fixture(scope="module")
def squares_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "squares.npz"
    make_squares().save(path)
    return path


def coverage(*args):
    return CliRunner().invoke(main, ["metrics", "coverage", *map(str, args)])


def test_squares_file_table_json_and_heatmap(squares_npz, tmp_path):
    out, picture = tmp_path / "m.json", tmp_path / "h.png"
    result = coverage(squares_npz, "--json", out, "--heatmap", picture)
    assert result.exit_code == 0, result.output
    assert "coverage ratio" in result.output and "Wasserstein-1" in result.output
    metrics = json.loads(out.read_text())
    assert KEYS <= set(metrics)
    assert metrics["dataset"] == "squares" and metrics["n_samples"] == 3136
    assert metrics["valid_fraction"] == 1.0 and metrics["js_divergence"] == 0
    assert len(metrics["quadrant_mass"]) == 4
    assert Image.open(picture).size == (2 * 256 + 4, 14 + 256 + 4)


def test_first_n_images_and_seed(squares_npz, tmp_path):
    runs = []
    for seed in (0, 0, 1):
        out = tmp_path / f"m{len(runs)}.json"
        result = coverage(squares_npz, "--n", 100, "--seed", seed, "--json", out)
        assert result.exit_code == 0, result.output
        runs.append(json.loads(out.read_text()))
    assert runs[0]["n_samples"] == 100
    assert runs[0] == runs[1] and runs[0]["density"] != runs[2]["density"]


def test_npy_and_png_folder_infer_shapes(tmp_path):
    images = make_shapes(40, seed=2).to_arrays()["images"]
    np.save(tmp_path / "shapes.npy", images)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    results = []
    for source in (tmp_path / "shapes.npy", folder):
        out = tmp_path / f"{source.stem}.json"
        result = coverage(source, "--json", out)
        assert result.exit_code == 0, result.output
        assert "red object" in result.output
        results.append(json.loads(out.read_text()))
    assert results[0] == results[1]
    assert results[0]["dataset"] == "shapes" and results[0]["valid_fraction"] == 1.0
    assert {"red", "blue", "offset"} <= set(results[0])


def test_checkpoint_is_sampled(tmp_path, gan_checkpoint):
    from gen.metrics import evaluate_samples
    from gen.sampling import sample_images

    checkpoint = gan_checkpoint
    expected = evaluate_samples(sample_images(checkpoint, 64, seed=3), "squares", seed=3)
    for source in (checkpoint, checkpoint.parent):
        out = tmp_path / "m.json"
        result = coverage(source, "--n", 64, "--seed", 3, "--json", out)
        assert result.exit_code == 0, result.output
        assert json.loads(out.read_text())["n_samples"] == 64
        assert json.loads(out.read_text())["valid_fraction"] == expected["valid_fraction"]


@pytest.mark.parametrize("args, message", [
    (["--n", "5000"], "more than the 3136 images"),
    (["--dataset", "shapes"], "3 channels"),
    (["--json", "out.txt"], "--json must end in .json"),
    (["--heatmap", "out.jpg"], "--heatmap must end in .png"),
])
def test_bad_options_are_one_line_exit_2(squares_npz, tmp_path, args, message):
    args = [str(tmp_path / a) if a.startswith("out") else a for a in args]
    result = coverage(squares_npz, *args, "--json", tmp_path / "m.json") if "--json" not in args \
        else coverage(squares_npz, *args)
    assert result.exit_code == 2
    assert message in result.output and result.output.strip().count("\n") == 0
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_are_one_line_exit_2(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    fake = tmp_path / "model.pt"
    fake.write_bytes(b"not a checkpoint")
    empty = tmp_path / "empty"
    empty.mkdir()
    for source, message in ((notes, "expected an .npz"), (fake, "not a readable checkpoint"),
                            (empty, "no image files"), (tmp_path / "missing.npz", "does not exist")):
        result = coverage(source, "--json", tmp_path / "m.json")
        assert result.exit_code == 2, result.output
        assert message in result.output and result.output.strip().count("\n") == 0
        assert not (tmp_path / "m.json").exists()


def test_images_of_another_size_are_refused_not_measured_as_blank(tmp_path):
    small = tmp_path / "small.npz"
    np.savez(small, images=np.zeros((16, 32, 32, 1), dtype=np.uint8))
    result = coverage(small, "--json", tmp_path / "m.json")
    assert result.exit_code == 2 and "squares images are 64 x 64; got 32 x 32" in result.output
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("to_float", [lambda u8: u8 / 255, lambda u8: u8 / 127.5 - 1],
                         ids=["zero-one", "minus-one-one"])
def test_float_images_in_either_range_measure_as_their_uint8_form(squares_npz, tmp_path, to_float):
    with np.load(squares_npz) as arrays:
        images = arrays["images"][:500]
    floats = tmp_path / "floats.npy"
    np.save(floats, to_float(images.astype(np.float32)))
    as_uint8 = tmp_path / "uint8.npy"
    np.save(as_uint8, images)
    for source, out in ((floats, "f.json"), (as_uint8, "u.json")):
        assert coverage(source, "--json", tmp_path / out).exit_code == 0
    assert json.loads((tmp_path / "f.json").read_text()) == json.loads((tmp_path / "u.json").read_text())
    np.save(floats, images.astype(np.float32))  # 0-255 floats: ambiguous, refused
    result = coverage(floats)
    assert result.exit_code == 2 and "float images must lie in [0, 1] or [-1, 1]" in result.output
