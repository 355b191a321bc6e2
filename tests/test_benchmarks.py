import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from gpu_check import markdown_tables  # noqa: E402
from off_grid import off_grid_report, subpixel_extents  # noqa: E402

from gen.data import make_squares  # noqa: E402
from gen.geometry import decode_samples  # noqa: E402


def test_off_grid_report_separates_squares_between_pixel_positions():
    squares = make_squares()
    images = squares.float_images()[torch.as_tensor(squares.centres[:, 0] < 50)][:200]  # room to widen
    on_grid = off_grid_report(decode_samples(images, "squares"))
    assert on_grid["valid"] == 1.0 and on_grid["placed"] == 1.0
    assert on_grid["off_grid_share_of_placed"] == 0.0 and on_grid["valid_on_grid"] == 1.0
    widened = torch.maximum(images, images.roll(1, dims=-1))  # 10 px wide: centroid half a pixel off
    between = off_grid_report(decode_samples(widened, "squares"))
    assert between["placed"] == 1.0 and between["off_grid_share_of_placed"] == 1.0
    assert between["valid_off_grid"] == 0.0 and between["valid"] == 0.0


def test_off_grid_script_runs_on_a_checkpoint(gan_checkpoint):
    command = [sys.executable, str(BENCHMARKS / "off_grid.py"), str(gan_checkpoint),
               "--n", "32", "--threads", "1"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "off_grid_share_of_placed" in result.stdout


class RectangleRenderer:
    """Draws a rectangle at a sub-pixel centre (x, y) given as its latent, like the tiled G's
    `render`: value +1 inside, -1 outside, at any (row, column) coordinates in [-1, 1]."""

    config = SimpleNamespace(resolution=64)

    def __init__(self, half_width: float, half_height: float) -> None:
        self.half_width, self.half_height = half_width, half_height

    def render(self, centres: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        pixels = (coords + 1) * 63 / 2  # (row, column) in pixels
        x, y = (centres[:, axis].reshape(-1, *[1] * (coords.dim() - 2)) for axis in (0, 1))
        inside = (pixels[..., 0] - y).abs() < self.half_height
        inside &= (pixels[..., 1] - x).abs() < self.half_width
        return (inside.float() * 2 - 1)[..., None]


def test_subpixel_extents_measure_squares_between_pixel_centres():
    centres = torch.tensor([[20.3, 30.0], [40.5, 10.25], [12.0, 50.75]])
    step = 1 / 8
    square = subpixel_extents(RectangleRenderer(4.5, 4.5), centres, centres.numpy())
    assert square.shape == (3, 2) and np.all(np.abs(square - 9) <= step)
    wide = subpixel_extents(RectangleRenderer(4.75, 5.0), centres, centres.numpy())
    assert np.all(np.abs(wide[:, 0] - 9.5) <= step)  # width
    assert np.all(np.abs(wide[:, 1] - 10) <= step)  # height


def test_stop_benchmark_runs_one_tiny_iteration():
    command = [sys.executable, str(BENCHMARKS / "bench_stop.py"), "--steps", "4", "--repeats", "1",
               "--stop-after", "1", "--threads", "1"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "ratio" in result.stdout and "exit 0" in result.stdout and "0 steps lost" in result.stdout


def run_benchmark(script: str, *args: str) -> str:
    """A benchmark's output after one tiny iteration (its numbers are not checked, its tables are)."""
    command = [sys.executable, str(BENCHMARKS / script), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]  # the end of stderr holds the cause, also of a rank's
    return done.stdout


LSUN_SMOKE = ["--records", "150", "--decode", "80", "--steps", "1", "--repeats", "1", "--width", "4",
              "--threads", "1"]


def test_lsun_benchmark_smoke(tmp_path):
    out = run_benchmark("bench_lsun.py", *LSUN_SMOKE, "--db", str(tmp_path / "lsun"),
                        "--parts", "decoding,training")
    for row in ("gen data prepare, 2 workers", "prepared, held in memory",
                "GAN, CoordConv (--coordconv --arch dcgan)", "VAE, CoordConv"):
        assert f"| {row} |" in out, out


@pytest.mark.slow
def test_lsun_benchmark_opening_smoke(tmp_path):
    """Each opening runs in a fresh process (about 5 s of imports each): behind the slow marker."""
    out = run_benchmark("bench_lsun.py", *LSUN_SMOKE, "--db", str(tmp_path / "lsun"), "--parts", "opening")
    assert "| LSUN(root), index cached |" in out, out


def test_coordconv_benchmark_times_every_coordconv_layer_of_the_dcgan():
    for fast_paths in ([], ["--bf16", "--channels-last"]):
        out = run_benchmark("bench_coordconv.py", "--widths", "4,8", "--batch", "2", "--calls", "1",
                            "--repeats", "1", "--threads", "1", *fast_paths)
        (width4, width8) = markdown_tables(out)
        # 64 x 64 RGB: four transposed convs in G from 4 x 4, four strided convs in D from 64 x 64
        assert [row["width 8 layer"] for row in width8] == [
            "G deconv 64->32 @4", "G deconv 32->16 @8", "G deconv 16->8 @16", "G deconv 8->3 @32",
            "D conv 3->8 @64", "D conv 8->16 @32", "D conv 16->32 @16", "D conv 32->64 @8", "all layers"]
        assert [row["width 4 layer"] for row in width4][0] == "G deconv 32->16 @4"
        total = width8[-1]
        for column in ("conv ms", "position bias ms", "concatenating ms"):
            layers = sum(float(row[column]) for row in width8[:-1])
            assert float(total[column]) == pytest.approx(layers, abs=0.01), column
        for form in ("position bias", "concatenating"):
            ratio = float(total[f"{form} ms"]) / float(total["conv ms"])
            assert float(total[f"{form} x conv"]) == pytest.approx(ratio, abs=0.002), form


def test_markdown_tables_reads_each_table_and_refuses_a_repeated_column():
    text = "a line\n| x | y |\n|---|---:|\n| 1 | 2 |\n\n| z |\n|---|\n| 3 |\n"
    assert markdown_tables(text) == [[{"x": "1", "y": "2"}], [{"z": "3"}]]
    with pytest.raises(ValueError, match="repeats a column"):
        markdown_tables("| a | ratio | b | ratio |\n|---|---|---|---|\n| 1 | 2 | 3 | 4 |\n")


def test_reference_benchmark_smoke():
    out = run_benchmark("bench_reference.py", "--steps", "1", "--repeats", "1", "--widths", "4",
                        "--threads", "1")
    for row in ("pytorch/examples dcgan loop", "gen, same work", "CoordConv in every layer, position bias",
                "CoordConv in every layer, concatenating", "squares through a DataLoader (2 workers)"):
        assert f"| {row} |" in out, out
    out = run_benchmark("bench_reference.py", "--steps", "1", "--repeats", "1", "--widths", "4,8",
                        "--threads", "1", "--parts", "coordconv")
    assert "| CoordConv in every layer, position bias |" in out and "pytorch/examples" not in out, out
    assert "gen's CoordConv layers on cpu: the position bias form" in out
    assert [list(table[0])[0] for table in markdown_tables(out)] == [
        "CoordConv per model, width 4", "CoordConv per model, width 8"]


def test_scaling_benchmark_smoke():
    out = run_benchmark("bench_scaling.py", "--processes", "2", "--steps", "1", "--repeats", "1",
                        "--width", "4", "--batch-size", "8")
    assert "| 2 |" in out, out


def test_gpu_check_smoke_runs_every_part_on_the_cpu_and_writes_json(tmp_path):
    """`python benchmarks/gpu_check.py --smoke`: the device check, every part tiny on the CPU."""
    command = [sys.executable, str(BENCHMARKS / "gpu_check.py"), "--smoke", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    names = [part["part"] for part in summary["parts"]]
    for name in ("cuda-tests", "reference-fp32", "reference-bf16-channels-last",
                 "coordconv-layers", "coordconv-model", "scaling", "round-trip",
                 "fid-throughput", "jobs-2", "experiment"):
        assert name in names
        record = json.loads((tmp_path / f"{name}.json").read_text())
        assert record["device"] and record["returncode"] == 0, (name, record["stderr_tail"])
        assert record["commit"] and record["machine"]["threads"] == 1 and "tables_error" not in record
    model = json.loads((tmp_path / "coordconv-model.json").read_text())["tables"][0]
    rows = {row["CoordConv per model, width 4"] for row in model}
    assert rows == {"gen DCGAN, conv", "CoordConv in every layer, position bias",
                    "CoordConv in every layer, concatenating"}
    assert json.loads((tmp_path / "jobs-2.json").read_text())["measured"]["images_per_s"] > 0
    assert (tmp_path / "results" / "paper-generators" / "squares-dcgan-same-images-seed0.json").is_file()
