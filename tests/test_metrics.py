import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from gen.data import make_shapes, make_squares
from gen.data.notsoclevr import render_squares
from gen.geometry import decode_samples
from gen.metrics import (
    density_coverage,
    evaluate_samples,
    expected_coverage,
    flatten_metrics,
    format_table,
    heatmap_picture,
    js_divergence,
    kl_divergence,
    mean_image,
    offset_reference,
    quadrant_mass,
    reference_mean_image,
    reference_sample,
    save_heatmap,
    save_metrics,
    shapes_reference,
    squares_reference,
    wasserstein_grid,
)
from gen.tables import format_rows

K = 3136  # square centres


@pytest.fixture(scope="module")
def squares():
    return make_squares()


def square_images(centres) -> torch.Tensor:
    return render_squares(torch.as_tensor(centres, dtype=torch.long))


def test_references_follow_the_dataset_definition_exactly():
    assert np.isclose(squares_reference().sum(), 1) and (squares_reference() > 0).sum() == K
    axis = np.arange(10, 54)
    x, y = np.meshgrid(axis, axis)
    centres = np.stack([x.ravel(), y.ravel()], axis=1)
    gap = centres[:, None, :] - centres[None, :, :]
    allowed = (gap**2).sum(axis=2) >= 400  # every pair the rejection sampler keeps
    marginal = np.zeros((64, 64))
    np.add.at(marginal, (centres[:, 1], centres[:, 0]), allowed.sum(axis=1))
    assert np.allclose(shapes_reference(), marginal / marginal.sum())
    offsets = np.zeros((127, 127))
    np.add.at(offsets, (gap[..., 1][allowed] + 63, gap[..., 0][allowed] + 63), 1)
    assert np.allclose(offset_reference(), offsets / offsets.sum())


def test_reference_sample_matches_the_renderer_distribution():
    drawn = reference_sample("shapes", 20_000, np.random.default_rng(0))
    made = make_shapes(20_000, seed=0).centres.numpy()
    assert np.linalg.norm(drawn[:, 0] - drawn[:, 1], axis=1).min() >= 20
    for sample in (drawn, made):
        counts = np.zeros((64, 64))
        np.add.at(counts, (sample[:, 0, 1], sample[:, 0, 0]), 1)
        assert js_divergence(counts.reshape(8, 8, 8, 8).sum(axis=(1, 3)),
                             shapes_reference().reshape(8, 8, 8, 8).sum(axis=(1, 3))) < 0.002


def test_expected_coverage_is_exact():
    assert math.isclose(expected_coverage(squares_reference(), 1), 1 / K)
    assert math.isclose(expected_coverage(squares_reference(), K), 1 - (1 - 1 / K) ** K)
    rng = np.random.default_rng(1)
    hits = []
    for _ in range(200):
        sample = reference_sample("shapes", 300, rng).reshape(-1, 2)
        hits.append(len(np.unique(sample[:, 1] * 64 + sample[:, 0])) / (shapes_reference() > 0).sum())
    assert abs(np.mean(hits) - expected_coverage(shapes_reference(), 300, per_sample=2)) < 0.003


def test_wasserstein_is_exact_on_shifts_and_point_masses():
    block = np.zeros((64, 64))
    block[10:30, 5:25] = 1
    shifted = np.roll(np.roll(block, 2, axis=0), 3, axis=1)
    assert math.isclose(wasserstein_grid(block, shifted), 5, rel_tol=1e-9)
    point = np.zeros((64, 64))
    point[40, 20] = 1
    y, x = np.nonzero(block)
    mean_distance = np.mean(np.abs(x - 20) + np.abs(y - 40))
    assert math.isclose(wasserstein_grid(point, block), mean_distance, rel_tol=1e-9)
    assert wasserstein_grid(block, block) == 0


def test_real_squares_score_perfectly(squares):
    metrics = evaluate_samples(squares.images, "squares")
    assert metrics["n_samples"] == K and metrics["valid_fraction"] == 1.0
    assert metrics["position_coverage"] == 1.0
    assert metrics["js_divergence"] == 0 and metrics["js_divergence_coarse"] == 0
    assert metrics["wasserstein"] == 0
    assert np.allclose(metrics["quadrant_mass"], [841 / K, 783 / K, 783 / K, 729 / K])
    assert np.allclose(metrics["quadrant_mass"], metrics["quadrant_mass_reference"])


def test_iid_real_squares_match_real_expectations(squares):
    rows = torch.randint(0, K, (20_000,), generator=torch.Generator().manual_seed(5))
    metrics = evaluate_samples(squares.float_images()[rows], "squares", seed=3)
    real = metrics["real_sample"]
    assert metrics["valid_fraction"] == 1.0
    assert abs(metrics["coverage_ratio"] - 1) < 0.01
    assert metrics["js_divergence_coarse"] < 0.002
    assert abs(metrics["js_divergence"] - real["js_divergence"]) < 0.2 * real["js_divergence"]
    assert abs(metrics["wasserstein"] - real["wasserstein"]) < real["wasserstein"]
    assert abs(metrics["density"] - 1) < 0.05 and abs(metrics["coverage_knn"] - (1 - 0.5**5)) < 0.02


def test_every_sample_at_one_centre():
    n = 500
    metrics = evaluate_samples(square_images([[20, 40]] * n), "squares")
    assert metrics["valid_fraction"] == 1.0
    assert metrics["position_coverage"] == 1 / K
    assert math.isclose(metrics["coverage_ratio"], (1 / K) / (1 - (1 - 1 / K) ** n))
    m = (1 / K + 1) / 2  # the mixture at the centre; elsewhere it is half the reference
    js = 0.5 * ((K - 1) / K * 1 + 1 / K * math.log2(1 / K / m)) + 0.5 * math.log2(1 / m)
    assert math.isclose(metrics["js_divergence"], js, rel_tol=1e-9)
    q_hit, q_miss = (n + 1) / (n + K), 1 / (n + K)  # add-one smoothing
    kl = 1 / K * math.log2(1 / K / q_hit) + (K - 1) / K * math.log2(1 / K / q_miss)
    assert math.isclose(metrics["kl_divergence"], kl, rel_tol=1e-9)
    axis = np.arange(4, 60)
    assert math.isclose(metrics["wasserstein"], np.abs(axis - 20).mean() + np.abs(axis - 40).mean(),
                        rel_tol=1e-9)
    assert metrics["quadrant_mass"] == [0, 0, 1, 0]
    assert metrics["coverage_knn"] < 0.05  # only real points within a few pixels of (20, 40)


def test_three_quadrants_only(squares):
    kept = squares.subset(~(squares.centres > 32).all(dim=1))
    metrics = evaluate_samples(kept.images, "squares")
    n = len(kept)
    assert n == 2407
    assert metrics["heldout_quadrant_mass"] == 0
    assert np.allclose(metrics["quadrant_mass"], [841 / n, 783 / n, 783 / n, 0])
    assert math.isclose(metrics["position_coverage"], n / K)
    m_in = (1 / K + 1 / n) / 2
    js = 0.5 * (n / K * math.log2(1 / K / m_in) + (K - n) / K * 1) + 0.5 * math.log2(1 / n / m_in)
    assert math.isclose(metrics["js_divergence"], js, rel_tol=1e-9)
    assert metrics["wasserstein"] > 1


def test_half_blank(squares):
    images = torch.cat([squares.images, torch.zeros_like(squares.images)])
    metrics = evaluate_samples(images, "squares")
    assert metrics["valid_fraction"] == 0.5 and metrics["invalid"]["blank"] == 0.5
    assert metrics["position_coverage"] == 1.0
    assert math.isclose(metrics["expected_real_coverage"], 1 - (1 - 1 / K) ** (2 * K))
    assert metrics["js_divergence"] == 0
    # invalid samples are fakes far from every real point: density halves
    assert abs(metrics["density"] - 0.5) < 0.03


def test_wrong_sizes_two_squares_and_noise_are_all_invalid(squares):
    small = np.zeros((10, 64, 64, 1), dtype=np.uint8)
    small[:, 20:27, 20:27] = 255
    two = (squares.images[:10] | squares.images[-10:]).permute(0, 2, 3, 1).numpy()
    noise = np.random.default_rng(0).integers(0, 256, (10, 64, 64, 1), dtype=np.uint8)
    for images, reason in ((small, "size"), (two, "object_count"), (noise, "object_count")):
        metrics = evaluate_samples(images, "squares")
        assert metrics["valid_fraction"] == 0 and metrics["invalid"][reason] == 1
        assert metrics["position_coverage"] == 0 and metrics["coverage_ratio"] == 0
        assert metrics["density"] == 0 and metrics["coverage_knn"] == 0
        assert math.isnan(metrics["js_divergence"]) and math.isnan(metrics["wasserstein"])


def test_real_shapes_score_like_real_data():
    shapes = make_shapes(4000, seed=7)
    metrics = evaluate_samples(shapes.images, "shapes", seed=1)
    assert metrics["valid_fraction"] == 1.0
    for section in (metrics, metrics["red"], metrics["blue"], metrics["offset"]):
        assert abs(section["coverage_ratio"] - 1) < 0.03
        real = section["real_sample"]
        assert abs(section["js_divergence"] - real["js_divergence"]) < 0.1 * real["js_divergence"]
        assert abs(section["density"] - 1) < 0.1
    assert abs(metrics["red"]["square_fraction"] - 0.5) < 0.03
    assert metrics["offset"]["too_close_fraction"] == 0
    assert abs(metrics["offset"]["mean_distance"] - metrics["offset"]["mean_distance_reference"]) < 0.5


def test_shapes_collapsed_to_one_layout():
    shapes = make_shapes(1, seed=2)
    metrics = evaluate_samples(shapes.images.repeat(300, 1, 1, 1), "shapes")
    assert metrics["valid_fraction"] == 1.0
    assert metrics["red"]["position_coverage"] == metrics["blue"]["position_coverage"] == 1 / 1936
    assert metrics["position_coverage"] == 2 / 1936
    assert metrics["offset"]["position_coverage"] == 1 / (offset_reference() > 0).sum()


def test_quadrant_lines_at_32_belong_to_the_top_left():
    positions = np.array([[32, 32], [33, 32], [32, 33], [33, 33]])
    assert quadrant_mass(positions) == [0.25, 0.25, 0.25, 0.25]
    assert quadrant_mass(positions[:1]) == [1, 0, 0, 0]


def test_divergences_by_hand():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.0, 0.5, 0.5])
    assert math.isclose(js_divergence(p, q), 0.5)
    assert js_divergence(p, p) == 0
    reference = np.array([0.5, 0.5, 0.0])
    counts = np.array([3.0, 0.0, 1.0])  # smoothed: (4, 1) / 6 on the support, 1/6 off it
    assert math.isclose(kl_divergence(reference, counts), 0.5 * math.log2(0.5 / (4 / 6)) + 0.5 * math.log2(3))


def test_density_coverage_of_identical_and_distant_sets():
    rng = np.random.default_rng(0)
    real, fake = rng.random((4000, 2)), rng.random((4000, 2))
    density, coverage = density_coverage(real, fake)
    assert abs(density - 1) < 0.05 and abs(coverage - (1 - 0.5**5)) < 0.02
    assert density_coverage(real, fake + 10) == (0.0, 0.0)


def test_same_seed_same_numbers_and_seed_changes_the_real_sample(squares):
    images = squares.images[:500]
    a, b = evaluate_samples(images, seed=4), evaluate_samples(images, seed=4)
    assert a == b
    c = evaluate_samples(images, seed=5)
    assert c["density"] != a["density"] and c["js_divergence"] == a["js_divergence"]


def test_torch_float_and_uint8_inputs_agree(squares):
    rows = torch.arange(0, K, 7)
    a = evaluate_samples(squares.images[rows], "squares")
    b = evaluate_samples(squares.float_images()[rows], "squares")
    c = evaluate_samples(squares.images[rows].permute(0, 2, 3, 1).numpy(), "squares")
    assert a == b == c


def test_flatten_json_and_table(tmp_path):
    metrics = evaluate_samples(make_shapes(200, seed=0).images, "shapes")
    metrics["red"]["wasserstein"] = math.nan
    flat = flatten_metrics(metrics)
    assert "quadrant_mass/bottom_right" in flat and "red/coverage_ratio" in flat
    assert "offset/real_sample/js_divergence" in flat and "dataset" not in flat
    assert all(isinstance(value, float) for value in flat.values())
    save_metrics(tmp_path / "m.json", metrics)

    def refuse(name):
        raise ValueError(name)

    loaded = json.loads((tmp_path / "m.json").read_text(), parse_constant=refuse)
    assert loaded["red"]["wasserstein"] is None
    assert loaded["n_samples"] == 200 and len(loaded["quadrant_mass"]) == 4
    table = format_table(metrics)
    assert "coverage ratio" in table and "blue object" in table and "offset blue - red" in table


def test_mean_images_and_heatmap(squares, tmp_path):
    assert np.allclose(mean_image(squares.images, "squares"), reference_mean_image("squares"))
    assert np.allclose(mean_image(squares.float_images(), "squares"), reference_mean_image("squares"))
    shapes = make_shapes(5000, seed=0)
    difference = mean_image(shapes.images, "shapes") - reference_mean_image("shapes")
    assert difference.shape == (2, 64, 64) and np.abs(difference).max() < 0.03
    picture = heatmap_picture(shapes.images[:100], "shapes")
    assert picture.shape == (14 + 2 * (256 + 4), 2 * 256 + 4, 3)
    save_heatmap(tmp_path / "h.png", squares.images[:50], "squares")
    assert Image.open(tmp_path / "h.png").size == (2 * 256 + 4, 14 + 256 + 4)


def test_report_module_does_not_import_scipy():
    code = "import sys, gen.metrics.report; assert 'scipy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_format_rows_aligns_columns():
    lines = format_rows([("short", "1.5", "a"), ("a longer name", "12.25", ""), ("heading", "", "")],
                        ("metric", "value", "ideal"))
    assert lines == [
        "metric         value  ideal",
        "short            1.5  a",
        "a longer name  12.25",
        "heading",
    ]


def _without_w1_and_quadrants(section: dict) -> dict:
    """The numbers the position-only view shares with the strict one."""
    dropped = {"wasserstein", "quadrant_mass", "heldout_quadrant_mass", "quadrant_mass_reference",
               "square_fraction"}
    return {key: (_without_w1_and_quadrants(value) if isinstance(value, dict) else value)
            for key, value in section.items() if key not in dropped}


@pytest.mark.parametrize("dataset", ["squares", "shapes"])
def test_real_data_scores_the_same_on_the_strict_and_the_position_only_view(squares, dataset):
    images = squares.images if dataset == "squares" else make_shapes(3000, seed=2).images
    metrics = evaluate_samples(images, dataset, seed=4)
    view = metrics["position_only"]
    assert view["placed_fraction"] == metrics["valid_fraction"] == 1.0
    assert view["n_placed"] == metrics["n_valid"] == len(images)
    sections = ["", "red", "blue", "offset"] if dataset == "shapes" else [""]
    for name in sections:
        strict = metrics[name] if name else metrics
        placed = view[name] if name else view
        keys = ("coverage_ratio", "js_divergence", "kl_divergence", "density", "coverage_knn")
        assert {key: strict[key] for key in keys} == {key: placed[key] for key in keys}, name
        assert _without_w1_and_quadrants(strict["real_sample"]) == _without_w1_and_quadrants(
            placed["real_sample"])
    assert "wasserstein" not in view  # the strict view has it; the position-only view skips the LP
    assert view["square_fraction"] == pytest.approx(view["square_fraction_reference"], abs=0.02)
    assert view["mean_pixels"] == pytest.approx(view["mean_pixels_reference"], abs=0.3)


def test_position_only_counts_misdrawn_objects_where_they_are():
    """A speck beside a square, a square too large, a circle among squares: invalid, yet
    placed where the object is; two squares and a blank canvas are not placed."""
    images = square_images([[20, 20], [30, 40], [40, 30], [20, 20], [30, 30]]).numpy()
    images[0, 0, 0:2, 0:2] = 255  # a 4-pixel speck
    images[1, 0, 34:47, 24:37] = 255  # 13 x 13 around (30, 40)
    images[2, 0] = 0
    yy, xx = np.mgrid[:64, :64]
    images[2, 0][(xx - 40) ** 2 + (yy - 30) ** 2 <= 4.5**2] = 255  # a circle at (40, 30)
    images[3, 0, 50:59, 50:59] = 255  # a second square
    images[4] = 0
    metrics = evaluate_samples(images, "squares")
    assert metrics["valid_fraction"] == 0
    assert metrics["invalid"] == {"blank": 0.2, "object_count": 0.4, "size": 0.2, "shape": 0.2}
    view = metrics["position_only"]
    assert view["n_placed"] == 3 and view["placed_fraction"] == 0.6
    decoded = decode_samples(images, "squares")
    assert decoded.placed.tolist() == [True, True, True, False, False]
    assert np.allclose(decoded.placed_centres[:3, 0], [[20, 20], [30, 40], [40, 30]])
    assert decoded.placed_kinds[:, 0].tolist() == [0, 0, 1, -1, -1]  # square, square, circle
    assert decoded.placed_pixels[:, 0].tolist() == [81, 169, 69, 0, 0]
    assert view["square_fraction"] == pytest.approx(2 / 3)
    assert view["mean_pixels"] == pytest.approx((81 + 169 + 69) / 3)
    assert (view["square_fraction_reference"], view["mean_pixels_reference"]) == (1.0, 81.0)
    table = format_table(metrics)
    assert "position only" in table and "square fraction of placed objects" in table
    assert "position_only/placed_fraction" in flatten_metrics(metrics)
