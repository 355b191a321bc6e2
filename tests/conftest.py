"""Shared fixtures: tiny run settings and models, trained tiny checkpoints, and checkpoints
saved by older versions of the checkpoint format."""

from __future__ import annotations

import time
from pathlib import Path
from unittest import mock

import pytest

from gen import runs
from gen.configs import RunConfig
from gen.gan.config import DiscriminatorConfig, GANConfig, GeneratorConfig
from gen.vae.config import VAEConfig, VAEModelConfig

TINY_RUN = dict(steps=4, batch_size=4, log_every=2, image_every=2, ckpt_every=2, eval_every=4,
                eval_samples=32, fid_samples=0, device="cpu", workers=0)
OLD_CHECKPOINTS = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def tiny_run():
    """Factory of RunConfigs: a few CPU steps at batch 4, any field overridable."""

    def make(**overrides) -> RunConfig:
        return RunConfig(**{**TINY_RUN, **overrides})

    return make


@pytest.fixture(scope="session")
def tiny_gan() -> GANConfig:
    """A DCGAN GAN small enough to train a few steps in a second."""
    return GANConfig(generator=GeneratorConfig(latent_dim=8, width=4, output_bias=0.0),
                     discriminator=DiscriminatorConfig(width=4), r1_every=2)


@pytest.fixture(scope="session")
def tiny_vae():
    """Factory of small VAE configs; keyword arguments replace VAEModelConfig fields."""

    def make(**model) -> VAEConfig:
        return VAEConfig(model=VAEModelConfig(latent_dim=4, width=4, broadcast_width=4, **model), kl_warmup=2)

    return make


@pytest.fixture(scope="session")
def gan_checkpoint(tmp_path_factory, tiny_run, tiny_gan) -> Path:
    """A GAN trained two steps on squares (its samples are not yet squares)."""
    return runs.start(tiny_run(steps=2, eval_every=100), tiny_gan, tmp_path_factory.mktemp("gan") / "run")


@pytest.fixture(scope="session")
def vae_checkpoint(tmp_path_factory, tiny_run, tiny_vae) -> Path:
    """A VAE (latent 4) trained two steps on squares."""
    return runs.start(tiny_run(steps=2, eval_every=100), tiny_vae(), tmp_path_factory.mktemp("vae") / "run")


@pytest.fixture(params=["gan-tiled", "gan-dcgan", "vae"])
def format1_checkpoint(request) -> Path:
    """Checkpoints of format 1, as saved before the format-2 configs (tests/data/README.md)."""
    return OLD_CHECKPOINTS / "format1" / f"{request.param}.pt"


@pytest.fixture(autouse=True)
def key_cache(tmp_path_factory, monkeypatch) -> Path:
    """LSUN key indexes go to a per-test folder, never to the user's cache."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("GEN_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory) -> Path:
    """A randomly initialised Inception-v3 in torch-fidelity's layout (tests run offline),
    its BatchNorm statistics set from a batch of random images so that its features vary
    on the scale of real ones instead of vanishing."""
    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as inception_v3

    with mock.patch.object(inception_v3.FeatureExtractorInceptionV3, "load_state_dict", lambda *args: None), \
            mock.patch.object(inception_v3, "load_state_dict_from_url", lambda *args, **kwargs: {}):
        torch.manual_seed(0)
        network = inception_v3.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.train()
            module.momentum = None  # a cumulative average: the statistics of the one batch
    with torch.no_grad():
        pixels = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(0))
        network(pixels)
    path = tmp_path_factory.mktemp("inception") / "inception.pt"
    torch.save(network.eval().state_dict(), path)
    return path


@pytest.fixture(scope="session")
def wait_for_run_start():
    """Waits until a training subprocess has written RUN_DIR/config.json (its loop starts
    next), failing the test after `timeout` seconds instead of signalling a process that
    never started."""

    def wait(run_dir: Path, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not (run_dir / "config.json").exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"no {run_dir / 'config.json'} after {timeout} s")
            time.sleep(0.02)

    return wait
