"""FID, KID, precision/recall and density/coverage: the maths against direct computations,
the Inception weights as data, reference caching, image sets, and the CLI. All offline: a
randomly initialised Inception-v3 (conftest) stands in for the released weights."""

from __future__ import annotations

import io
import json
import os

import lmdb
import numpy as np
import pytest
import scipy.linalg
import torch
from click.testing import CliRunner
from PIL import Image

from gen.cli import main
from gen.data.image_sets import open_image_set
from gen.data.prepare import prepare
from gen.errors import InputError
from gen.metrics import fidelity, knn
from gen.metrics.conventions import KNN_K
from gen.metrics.fidelity import Inception, fidelity_scores, frechet_distance, set_features


def patterns(count: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Smooth coloured stripes in varied phases and frequencies: images with structure."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size]
    images = []
    for _ in range(count):
        frequency, phase = rng.uniform(0.1, 0.6, 3), rng.uniform(0, 6.3, 3)
        channels = [np.sin(frequency[c] * (cols if c != 1 else rows) + phase[c]) for c in range(3)]
        images.append(np.stack(channels, axis=-1))
    return np.round((np.stack(images) + 1) * 127.5).astype(np.uint8)


@pytest.fixture(scope="module")
def inception(inception_weights) -> Inception:
    return Inception(inception_weights)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_noise(inception):
    images = patterns(12)
    clean = inception.features([images], len(images))
    assert abs(frechet_distance(clean, clean)) < 1e-3
    rng = np.random.default_rng(1)
    distances = []
    for sigma in (16, 64):
        noisy = np.clip(images + rng.normal(0, sigma, images.shape), 0, 255).astype(np.uint8)
        distances.append(frechet_distance(inception.features([noisy], len(noisy)), clean))
    assert 0 < distances[0] < distances[1]


def test_frechet_distance_matches_scipy_sqrtm_on_gaussian_features():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(600, 32)) @ rng.normal(size=(32, 32))
    b = rng.normal(size=(500, 32)) @ rng.normal(size=(32, 32)) + 0.5
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    direct = (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s1) + np.trace(s2)
              - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real))
    assert frechet_distance(a, b) == pytest.approx(direct, rel=1e-9)


def test_kid_matches_a_direct_unbiased_mmd_estimate():
    rng = np.random.default_rng(0)
    fake, real = rng.normal(size=(40, 16)), rng.normal(0.3, 1.2, size=(40, 16))
    kernel = lambda x, y: (x @ y.T / x.shape[1] + 1) ** 3  # noqa: E731 (KID's polynomial kernel)
    m = len(fake)
    off_diagonal = lambda k: (k.sum() - np.trace(k)) / (m * (m - 1))  # noqa: E731
    direct = (off_diagonal(kernel(fake, fake)) + off_diagonal(kernel(real, real))
              - 2 * kernel(fake, real).mean())
    scores = fidelity_scores(fake, real)  # subsets of min(1000, 40): every subset is the whole set
    assert scores["kid"] == pytest.approx(direct, rel=1e-6) and scores["kid_std"] < 1e-9


def test_precision_recall_density_coverage_of_a_shifted_set():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 64))
    same = fidelity_scores(real, real)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    assert same["density"] == pytest.approx((KNN_K + 1) / KNN_K)  # each real ball holds itself and k others
    shifted = fidelity_scores(real + 3.0, real)
    assert shifted["precision"] < 0.1 and shifted["recall"] < 0.1 and shifted["coverage"] < 0.1


def test_density_averages_over_the_generated_samples():
    real = np.random.default_rng(0).normal(size=(200, 64))
    twice = fidelity_scores(np.concatenate([real, real]), real)  # every ball holds its k + 1 twice
    assert twice["density"] == pytest.approx((KNN_K + 1) / KNN_K) and twice["coverage"] == 1.0


@pytest.mark.parametrize("dims", [2, 3])
def test_dense_density_coverage_equals_the_kd_tree_one(dims, monkeypatch):
    rng = np.random.default_rng(dims)
    real, fake = rng.normal(size=(400, dims)), rng.normal(size=(300, dims)) * 1.3
    tree = knn.density_coverage(real, fake)
    monkeypatch.setattr(knn, "KD_TREE_MAX_DIMS", 0)
    assert knn.density_coverage(real, fake) == pytest.approx(tree)


def test_too_few_images_are_refused():
    with pytest.raises(InputError, match="at least 10"):
        fidelity_scores(np.zeros((5, 8)), np.zeros((50, 8)))


def test_weights_are_loaded_as_data_and_foreign_files_refused(tmp_path, monkeypatch):
    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {tmp_path / 'ran'}",)

    torch.save({"w": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match="pickled code.*refused"):
        Inception(tmp_path / "evil.pt")
    assert not (tmp_path / "ran").exists()
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="does not hold torch-fidelity's Inception-v3 weights"):
        Inception(tmp_path / "other.pt")
    monkeypatch.setenv(fidelity.WEIGHTS_ENV, str(tmp_path / "missing.pt"))
    with pytest.raises(InputError, match="missing.pt does not exist"):
        Inception()


def offline(monkeypatch, tmp_path) -> None:
    """No weights anywhere and no network: an empty hub cache, a download that fails."""
    monkeypatch.delenv(fidelity.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def no_network(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)


def test_no_weights_is_a_one_line_error(tmp_path, monkeypatch):
    offline(monkeypatch, tmp_path)
    np.savez(tmp_path / "a.npz", images=patterns(12))
    images = str(tmp_path / "a.npz")
    result = CliRunner().invoke(main, ["metrics", "fid", images, "--ref", images])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "--inception-weights FILE" in result.output, result.output


def test_reference_features_are_cached_by_fingerprint(inception, tmp_path):
    np.save(tmp_path / "ref.npy", patterns(20))
    reference = open_image_set(tmp_path / "ref.npy", 32)
    first = set_features(inception, reference, 12, seed=0)
    reference.read = None  # a cache hit must not read an image
    assert np.array_equal(set_features(inception, reference, 12, seed=0), first)
    np.save(tmp_path / "ref.npy", patterns(20, seed=1))  # the file changed: its fingerprint too
    changed = set_features(inception, open_image_set(tmp_path / "ref.npy", 32), 12, seed=0)
    assert not np.array_equal(changed, first)


def image_folder(root, images: np.ndarray) -> None:
    root.mkdir()
    for index, image in enumerate(images):
        Image.fromarray(image).save(root / f"{index:03d}.png")


def test_every_kind_of_image_set_reads_the_same_pixels(tmp_path):
    images = patterns(12, size=48)
    image_folder(tmp_path / "folder", images)
    prepare("folder", tmp_path / "folder", 64, tmp_path / "prepared", workers=1)
    with lmdb.open(str(tmp_path / "lsun"), map_size=1 << 24) as env, env.begin(write=True) as txn:
        for index, image in enumerate(images):
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            txn.put(f"{index:03d}".encode(), buffer.getvalue())
    sets = {kind: open_image_set(tmp_path / name, 64)
            for kind, name in (("folder", "folder"), ("prepared", "prepared"), ("lsun", "lsun"))}
    indices = [0, 5, 11]
    expected = sets["folder"].read(indices)
    assert expected.shape == (3, 64, 64, 3) and expected.dtype == np.uint8
    for kind, image_set in sets.items():
        assert image_set.count == 12 and np.array_equal(image_set.read(indices), expected), kind
    np.savez(tmp_path / "array.npz", images=sets["prepared"].read(range(12)))
    assert np.array_equal(open_image_set(tmp_path / "array.npz", 64).read(indices), expected)
    with pytest.raises(InputError, match="holds 64 x 64 images; expected 32 x 32"):
        open_image_set(tmp_path / "array.npz", 32)


def test_cli_measures_a_file_against_a_folder(inception_weights, tmp_path):
    np.savez(tmp_path / "fake.npz", images=patterns(16, seed=2))
    image_folder(tmp_path / "real", patterns(20, seed=3))
    args = ["metrics", "fid", str(tmp_path / "fake.npz"), "--ref", str(tmp_path / "real"),
            "--inception-weights", str(inception_weights), "--json", str(tmp_path / "fid.json")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "FID" in result.output and "16 generated, 16 reference" in result.output
    record = json.loads((tmp_path / "fid.json").read_text())
    assert record["fid"] > 0 and 0 <= record["precision"] <= 1 and record["reference_count"] == 16
