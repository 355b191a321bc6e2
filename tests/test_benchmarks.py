import subprocess
import sys
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from off_grid import off_grid_report  # noqa: E402

from gen.data import make_squares  # noqa: E402


def test_off_grid_report_separates_squares_between_pixel_positions():
    squares = make_squares()
    images = squares.float_images()[torch.as_tensor(squares.centres[:, 0] < 50)][:200]  # room to widen
    on_grid = off_grid_report(images)
    assert on_grid["valid"] == 1.0 and on_grid["placed"] == 1.0
    assert on_grid["off_grid_share_of_placed"] == 0.0 and on_grid["valid_on_grid"] == 1.0
    widened = torch.maximum(images, images.roll(1, dims=-1))  # 10 px wide: centroid half a pixel off
    between = off_grid_report(widened)
    assert between["placed"] == 1.0 and between["off_grid_share_of_placed"] == 1.0
    assert between["valid_off_grid"] == 0.0 and between["valid"] == 0.0


def test_off_grid_script_runs_on_a_checkpoint(gan_checkpoint):
    command = [sys.executable, str(BENCHMARKS / "off_grid.py"), str(gan_checkpoint),
               "--n", "32", "--threads", "1"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "off_grid_share_of_placed" in result.stdout
