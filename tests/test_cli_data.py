import numpy as np
from click.testing import CliRunner
from PIL import Image

from gen.cli import main


def test_help_lists_groups():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "data" in result.output


def test_make_squares_then_show(tmp_path):
    runner = CliRunner()
    out = tmp_path / "sq.npz"
    result = runner.invoke(main, ["data", "make", "squares", "--split", "quadrant", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with np.load(out) as arrays:
        assert arrays["images"].shape == (3136, 64, 64, 1) and arrays["images"].dtype == np.uint8
        assert arrays["test"].sum() == 729
        assert arrays["centres"].shape == (3136, 2)
    grid = tmp_path / "grid.png"
    result = runner.invoke(main, ["data", "show", str(out), "--out", str(grid), "--n", "16", "--nrow", "4"])
    assert result.exit_code == 0, result.output
    assert Image.open(grid).size == (4 * 66 + 2, 4 * 66 + 2)


def test_make_shapes_count_and_seed(tmp_path):
    runner = CliRunner()
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    for path in (a, b):
        args = ["data", "make", "shapes", "--n", "32", "--seed", "4", "--out", str(path)]
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
    with np.load(a) as x, np.load(b) as y:
        assert x["images"].shape == (32, 64, 64, 3)
        assert np.array_equal(x["images"], y["images"])
        assert x["centres"].shape == (32, 2, 2)


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path):
    runner = CliRunner()
    out = tmp_path / "x.npz"
    result = runner.invoke(main, ["data", "make", "squares", "--split", "uniform",
                                  "--test-fraction", "2", "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "test fraction" in result.output
    assert not out.exists()
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    result = runner.invoke(main, ["data", "show", str(bad), "--out", str(tmp_path / "g.png")])
    assert result.exit_code == 2 and "expected an .npz" in result.output
    assert not (tmp_path / "g.png").exists()


def test_unreadable_array_files_are_one_line_exit_2(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file")
    (tmp_path / "mixed").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "mixed" / "a.png")
    Image.new("L", (9, 9)).save(tmp_path / "mixed" / "b.png")
    runner = CliRunner()
    show = ["data", "show", "--out", str(tmp_path / "x.png")]
    for args, message in [
        ([*show, str(tmp_path / "objects.npy")], "not a readable .npy"),
        ([*show, str(tmp_path / "garbage.npz")], "not a readable .npz"),
        (["metrics", "coverage", str(tmp_path / "mixed")], "not a readable folder"),
        (["toy", "classify", "--data", str(tmp_path / "garbage.npz")], "not a readable Not-so-Clevr .npz"),
    ]:
        result = runner.invoke(main, args)
        assert result.exit_code == 2, result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()
