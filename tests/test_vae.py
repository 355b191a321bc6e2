import json
import math

import pytest
import torch
from click.testing import CliRunner

from gen import runs
from gen.checkpoint import load_checkpoint, load_task
from gen.cli import main
from gen.coordconv import AddCoords
from gen.data.notsoclevr import make_squares
from gen.vae.config import VAEConfig, VAEModelConfig
from gen.vae.evaluation import reconstruction_metrics
from gen.vae.likelihoods import Likelihood
from gen.vae.models import VAE
from gen.vae.task import VAETask, kl_to_standard_normal


@pytest.mark.parametrize("resolution", [32, 64, 128])
@pytest.mark.parametrize("decoder", ["dcgan", "broadcast"])
def test_encode_decode_shapes(resolution, decoder):
    config = VAEModelConfig(resolution=resolution, channels=3, latent_dim=5, width=4, decoder=decoder,
                            broadcast_width=4)
    vae = VAE(config)
    mean, log_var = vae.encode(torch.randn(2, 3, resolution, resolution))
    assert mean.shape == log_var.shape == (2, 5)
    assert vae.decode(mean).shape == (2, 3, resolution, resolution)


@pytest.mark.parametrize("encoder, decoder, n_encoder, n_decoder", [
    ("none", "none", 0, 0), ("all", "none", 4, 0), ("none", "all", 0, 4), ("first", "first", 1, 1)])
def test_coordconv_placement(encoder, decoder, n_encoder, n_decoder):
    vae = VAE(VAEModelConfig(width=4, encoder_coords=encoder, decoder_coords=decoder))
    count = lambda m: sum(isinstance(x, AddCoords) for x in m.modules())  # noqa: E731
    assert count(vae.encoder) == n_encoder and count(vae.decoder) == n_decoder


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zero = torch.zeros(3, 4)
    assert torch.allclose(kl_to_standard_normal(zero, zero), torch.zeros(3))
    mean = torch.tensor([[1.0, 0.0]])
    assert kl_to_standard_normal(mean, torch.zeros(1, 2)).item() == pytest.approx(0.5)


def test_likelihoods():
    images = torch.tensor([[[[-1.0, 1.0]]]])
    bernoulli = Likelihood("bernoulli")
    assert bernoulli.nll(torch.tensor([[[[-20.0, 20.0]]]]), images).item() == pytest.approx(0, abs=1e-6)
    assert bernoulli.nll(torch.zeros(1, 1, 1, 2), images).item() == pytest.approx(2 * math.log(2))
    gaussian = Likelihood("gaussian")
    expected = 2 * (math.log(0.1) + 0.5 * math.log(2 * math.pi))
    assert gaussian.nll(images.clone(), images).item() == pytest.approx(expected, rel=1e-5)
    discretized = Likelihood("discretized")
    exact = discretized.nll(images.clone(), images).item()
    end_bin_mass = 0.5 * (1 + math.erf((1 / 255) / 0.1 / math.sqrt(2)))  # (-inf, -1 + 1/255]
    assert exact == pytest.approx(-2 * math.log(end_bin_mass), rel=1e-4)
    assert discretized.nll(torch.zeros(1, 1, 1, 2), images).item() > exact
    assert torch.equal(bernoulli.mean_image(torch.zeros(1, 1, 1, 1)), torch.zeros(1, 1, 1, 1))
    with pytest.raises(ValueError):
        Likelihood("poisson")


def test_kl_warmup_is_linear_to_beta():
    task = VAETask(VAEConfig(model=VAEModelConfig(width=4), beta=2.0, kl_warmup=10), torch.device("cpu"))
    assert [task.kl_weight(s) for s in (0, 5, 10, 20)] == [0.0, 1.0, 2.0, 2.0]


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "discretized"])
@pytest.mark.parametrize("placement", [{}, {"encoder_coords": "all", "decoder_coords": "all"},
                                       {"decoder": "broadcast"}])
def test_vae_trains_for_each_likelihood_and_placement(tmp_path, likelihood, placement, tiny_run):
    config = VAEConfig(model=VAEModelConfig(latent_dim=4, width=4, broadcast_width=4, **placement),
                       likelihood=likelihood, kl_warmup=2)
    checkpoint = runs.start(tiny_run(steps=2, eval_every=100), config, tmp_path / "run")
    saved = load_checkpoint(checkpoint)
    assert saved.kind == "vae" and saved.step == 2
    assert all(torch.isfinite(v).all() for v in saved.task["networks"]["vae"].values()
               if v.is_floating_point())


def test_vae_resume_continues_identically(tmp_path, tiny_run, tiny_vae):
    straight = runs.start(tiny_run(steps=4, eval_every=100), tiny_vae(), tmp_path / "a")
    runs.start(tiny_run(steps=2, eval_every=100), tiny_vae(), tmp_path / "b")
    resumed = runs.resume(tmp_path / "b", steps=4)
    a = load_checkpoint(straight).task["networks"]["vae"]
    b = load_checkpoint(resumed).task["networks"]["vae"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_reconstruction_metrics_of_a_perfect_and_a_blank_model():
    held_out = make_squares("uniform").part("test").subset(slice(0, 40))

    class Perfect:
        def reconstruct(self, images):
            return images

    class Blank:
        def reconstruct(self, images):
            return -torch.ones_like(images)

    perfect = reconstruction_metrics(Perfect(), held_out, torch.device("cpu"))
    assert perfect["reconstruction_within_1px"] == 1.0 and perfect["reconstruction_centre_error_px"] == 0.0
    blank = reconstruction_metrics(Blank(), held_out, torch.device("cpu"))
    assert blank["reconstruction_within_1px"] == 0.0 and blank["reconstruction_valid_fraction"] == 0.0
    assert blank["reconstruction_found_fraction"] == 0.0


def test_reconstruction_metrics_measure_the_largest_object():
    held_out = make_squares().subset(slice(0, 8))

    class ShiftedWithSpeck:
        def reconstruct(self, images):
            shifted = torch.roll(images, shifts=2, dims=3)  # square moved 2 px right
            shifted[:, :, 0, 0] = 1.0  # a one-pixel speck far away
            return shifted

    metrics = reconstruction_metrics(ShiftedWithSpeck(), held_out, torch.device("cpu"))
    assert metrics["reconstruction_centre_error_px"] == 2.0
    assert metrics["reconstruction_within_1px"] == 0.0 and metrics["reconstruction_found_fraction"] == 1.0
    assert metrics["reconstruction_valid_fraction"] == 0.0


def test_split_runs_report_held_out_reconstruction(tmp_path, tiny_run, tiny_vae):
    runs.start(tiny_run(split="quadrant", eval_samples=16), tiny_vae(), tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["reconstruction_count"] == 729
    assert 0 <= metrics["reconstruction_within_1px"] <= 1


def test_encode_decode_api(tmp_path, tiny_run, tiny_vae):
    checkpoint = runs.start(tiny_run(steps=2, eval_every=100), tiny_vae(), tmp_path / "run")
    task, _ = load_task(checkpoint, torch.device("cpu"))
    images = make_squares().float_images()[:3]
    latents = task.encode(images)
    assert latents.shape == (3, 4)
    decoded = task.decode(latents)
    assert decoded.shape == (3, 1, 64, 64) and decoded.min() >= -1 and decoded.max() <= 1


def test_cli_train_vae_and_sample(tmp_path):
    runner = CliRunner()
    run_dir = tmp_path / "run"
    result = runner.invoke(main, ["train", "vae", "--coordconv", "--coord-in", "decoder", "--steps", "2",
                                  "--batch-size", "4", "--width", "4", "--latent-dim", "3",
                                  "--eval-every", "100", "--device", "cpu", "--out", str(run_dir)])
    assert result.exit_code == 0, result.output
    model = json.loads((run_dir / "config.json").read_text())["model"]
    assert model["model"]["decoder_coords"] == "all" and model["model"]["encoder_coords"] == "none"
    assert model["likelihood"] == "bernoulli"
    result = runner.invoke(main, ["sample", str(run_dir), "--n", "4", "--out", str(tmp_path / "s.npz")])
    assert result.exit_code == 0, result.output


def test_vae_preset_places_coordconv_and_picks_the_decoder_and_likelihood():
    from gen.vae.config import VAE_PRESET, vae_preset

    assert vae_preset().model == VAEConfig() == VAE_PRESET.model
    decoder_only = vae_preset(coordconv=True, coord_in="decoder", coord_layers="first").model.model
    assert (decoder_only.encoder_coords, decoder_only.decoder_coords) == ("none", "first")
    assert decoder_only.decoder == vae_preset(coordconv=True).model.model.decoder == "broadcast"
    assert vae_preset(coordconv=True, coord_in="encoder").model.model.decoder == "dcgan"
    assert vae_preset(coordconv=True, model={"decoder": "dcgan"}).model.model.decoder == "dcgan"
    assert vae_preset(data="lsun").model.likelihood == "discretized"
    assert vae_preset(data="lsun", likelihood="gaussian").model.likelihood == "gaussian"
    assert vae_preset(model={"width": 3, "latent_dim": None}, beta=None).model.model.width == 3
    with pytest.raises(ValueError, match="unknown decoder"):
        vae_preset(model={"decoder": "pixelcnn"})


def test_only_models_with_an_encoder_pass_require_encoder(tiny_vae, tiny_gan):
    from gen.gan.task import GANTask
    from gen.task import require_encoder

    vae = VAETask(tiny_vae(), torch.device("cpu"))
    assert require_encoder(vae, "--from-images") is vae
    with pytest.raises(ValueError, match="--from-images needs a VAE checkpoint"):
        require_encoder(GANTask(tiny_gan, torch.device("cpu")), "--from-images")
