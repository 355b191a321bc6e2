"""Quality of natural-image samples against a reference set: FID and KID, precision and
recall (Kynkaanniemi et al. 2019) and density and coverage (Naeem et al. 2020), all on the
2048-d pool features of Inception-v3.

The network and the KID and precision/recall maths are torch-fidelity's: its Inception-v3
is the TensorFlow FID graph ported with matching outputs, so the numbers compare with those
papers report. FID's matrix square root is taken in a form that stays exact when a set has
fewer images than features (below). The weights are data a user may receive: they are read
here with weights_only=True (torch-fidelity would unpickle a given file in full) and handed
to the network. Reference features are cached by the reference set's fingerprint.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch_fidelity.feature_extractor_inceptionv3 as inception_v3
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric
from tqdm import tqdm

from gen.data.image_sets import ImageSet
from gen.errors import InputError
from gen.fileio import cached_arrays, file_identity, load_torch_data
from gen.metrics.knn import density_coverage

INCEPTION_URL = inception_v3.URL_INCEPTION_V3
INCEPTION_SHA256_PREFIX = "6726825d"  # the release file's name carries it; torch.hub checks it
WEIGHTS_ENV = "GEN_INCEPTION_WEIGHTS"
FEATURES = "2048"
PR_NEIGHBOURS = 3  # Kynkaanniemi et al.'s k
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
MIN_IMAGES = 10  # below this the k-NN radii and covariances say nothing


class Inception:
    """Inception-v3 pool features of uint8 images, on a device; `identity` names the weights
    and the device type (for caches: GPU convolutions round differently from the CPU's)."""

    def __init__(self, weights: str | os.PathLike | None = None, device: torch.device | str = "cpu") -> None:
        path = weights_path(weights)
        state = load_torch_data(path, "Inception-v3 weights file")
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise InputError(f"{path} is not an Inception-v3 state dict")
        try:  # the weights reach the network through the download hook: no second, unsafe load
            with mock.patch.object(inception_v3, "load_state_dict_from_url", lambda *args, **kwargs: state):
                network = inception_v3.FeatureExtractorInceptionV3("inception-v3-compat", [FEATURES])
        except RuntimeError as error:
            raise InputError(f"{path} does not hold torch-fidelity's Inception-v3 weights "
                             f"({str(error).splitlines()[0]})") from None
        self.device = torch.device(device)
        self.network = network.to(self.device)
        self.identity = f"{file_identity(path)}|{self.device.type}"

    @torch.no_grad()
    def features(self, batches: Iterable[np.ndarray], total: int, desc: str = "inception") -> np.ndarray:
        """float32 N x 2048 features of uint8 N x H x W x C batches (C 1 or 3)."""
        chunks = []
        with tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True, mininterval=1.0,
                  disable=not sys.stderr.isatty()) as bar:
            for batch in batches:
                pixels = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2)
                if pixels.shape[1] == 1:
                    pixels = pixels.expand(-1, 3, -1, -1)
                chunks.append(self.network(pixels.to(self.device))[0].float().cpu())
                bar.update(len(batch))
        return torch.cat(chunks).numpy() if chunks else np.zeros((0, 2048), np.float32)


def weights_path(weights: str | os.PathLike | None = None) -> Path:
    """The Inception-v3 weights file: `weights`, else $GEN_INCEPTION_WEIGHTS, else torch
    hub's cached copy, downloaded there (hash-checked) on first use."""
    chosen = weights or os.environ.get(WEIGHTS_ENV)
    if chosen:
        if not Path(chosen).is_file():
            raise InputError(f"Inception-v3 weights file {chosen} does not exist")
        return Path(chosen)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_URL.rsplit("/", 1)[1]
    if not cached.is_file():
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(INCEPTION_URL, str(cached), INCEPTION_SHA256_PREFIX,
                                           progress=sys.stderr.isatty())
        except (OSError, RuntimeError) as error:
            reason = getattr(error, "reason", None) or str(error).splitlines()[0]
            raise InputError(f"no Inception-v3 weights: could not download {INCEPTION_URL} ({reason}); "
                             f"pass --inception-weights FILE or set {WEIGHTS_ENV}") from None
    return cached


def in_batches(images: np.ndarray, size: int = 100) -> Iterable[np.ndarray]:
    return (images[start:start + size] for start in range(0, len(images), size))


def set_features(inception: Inception, images: ImageSet, n: int, seed: int, batch: int = 100) -> np.ndarray:
    """Features of a seeded subset of min(n, count) images of a set, cached by the set's
    fingerprint, the subset and the weights: a reference is decoded and measured once."""
    indices = images.subset(n, seed)
    identity = f"{images.fingerprint}|n={len(indices)}|seed={seed}|{inception.identity}"

    def compute() -> dict[str, np.ndarray]:
        batches = (images.read(chunk) for chunk in in_batches(indices, batch))
        return {"features": inception.features(batches, len(indices), desc="reference features")}

    return cached_arrays("fid-features", identity, compute)["features"]


def fidelity_scores(generated: np.ndarray, reference: np.ndarray, seed: int = 0) -> dict[str, float]:
    """FID, KID (mean and std over subsets), precision, recall, density and coverage of
    generated features against reference features."""
    for name, features in (("generated", generated), ("reference", reference)):
        if len(features) < MIN_IMAGES:
            raise InputError(f"the {name} set has {len(features)} images; these metrics need at least "
                             f"{MIN_IMAGES}")
    fake, real = torch.from_numpy(generated).double(), torch.from_numpy(reference).double()
    kid = kid_features_to_metric(fake, real, kid_subsets=KID_SUBSETS, verbose=False, rng_seed=seed,
                                 kid_subset_size=min(KID_SUBSET_SIZE, len(fake), len(real)))
    prc = prc_features_to_metric(fake.float(), real.float(), prc_neighborhood=PR_NEIGHBOURS, verbose=False,
                                 prc_batch_size=10_000, save_cpu_ram=True)
    density, coverage = density_coverage(reference, generated, sample_count=len(generated))
    return {"fid": frechet_distance(generated, reference),
            "kid": kid["kernel_inception_distance_mean"], "kid_std": kid["kernel_inception_distance_std"],
            "precision": prc["precision"], "recall": prc["recall"],
            "density": density, "coverage": coverage,
            "generated_count": len(generated), "reference_count": len(reference)}


def psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a covariance matrix (rounding's negative eigenvalues as 0)."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(features_1: np.ndarray, features_2: np.ndarray) -> float:
    """The Frechet distance of Gaussians fitted to two feature sets:
    |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)). tr (S1 S2)^(1/2) is the sum of the
    singular values of S1^(1/2) S2^(1/2), which an SVD gets to rounding error even when the
    covariances are singular (fewer images than features), where sqrtm(S1 S2) or the
    eigenvalues of S1 S2 leave errors of the order of the square root of rounding error."""
    features_1, features_2 = features_1.astype(np.float64), features_2.astype(np.float64)
    sigma_1, sigma_2 = np.cov(features_1, rowvar=False), np.cov(features_2, rowvar=False)
    trace_sqrt = np.linalg.svd(psd_sqrt(sigma_1) @ psd_sqrt(sigma_2), compute_uv=False).sum()
    diff = features_1.mean(axis=0) - features_2.mean(axis=0)
    return float(diff @ diff + np.trace(sigma_1) + np.trace(sigma_2) - 2 * trace_sqrt)


def measure(generated: np.ndarray, reference: ImageSet, inception: Inception, reference_count: int,
            seed: int = 0) -> dict[str, float]:
    """Every score of uint8 generated images against a seeded subset of `reference_count`
    images of a reference set (whose features are cached)."""
    fake = inception.features(in_batches(generated), len(generated), desc="generated features")
    real = set_features(inception, reference, reference_count, seed)
    return fidelity_scores(fake, real, seed)


def format_scores(scores: dict[str, float]) -> str:
    """The scores as an aligned text table."""
    rows = [("FID", f"{scores['fid']:.3f}"), ("KID", f"{scores['kid']:.5f} +- {scores['kid_std']:.5f}"),
            ("precision", f"{scores['precision']:.4f}"), ("recall", f"{scores['recall']:.4f}"),
            ("density", f"{scores['density']:.4f}"), ("coverage", f"{scores['coverage']:.4f}"),
            ("images", f"{scores['generated_count']} generated, {scores['reference_count']} reference")]
    return "\n".join(f"{name:<10} {value}" for name, value in rows)
