"""Checks that need a CUDA device: the forms CoordConv takes there, the fast paths' step and
an exact resume on the GPU. They skip without one; benchmarks/gpu_check.py runs them."""

import copy
from dataclasses import replace

import pytest
import torch

from gen import runs
from gen.configs import RunConfig
from gen.coordconv import make_conv
from gen.families import build_task
from gen.gan.config import gan_preset
from gen.speed import apply_fast_paths

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
CUDA = torch.device("cuda")


@pytest.mark.parametrize("transpose", [False, True])
def test_both_coordconv_forms_agree_on_the_gpu(transpose, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # the same math, not TF32's rounding
    torch.manual_seed(0)
    layer = make_conv(8, 16, 4, coord=True, transpose=transpose, stride=2, padding=1).to(CUDA)
    x = torch.randn(4, 8, 16, 16, device=CUDA)
    assert torch.allclose(layer.position_bias_forward(x), layer.concatenating_forward(x), atol=1e-4)


def test_a_bf16_channels_last_step_on_the_gpu_matches_fp32(tiny_gan):
    real = torch.rand(8, 1, 64, 64, device=CUDA) * 2 - 1
    fp32 = build_task(tiny_gan.for_data(1, 64), CUDA, seed=0)
    fast = copy.deepcopy(fp32)
    apply_fast_paths(fast, RunConfig(steps=1, precision="bf16", channels_last=True), CUDA)
    exact = fp32.train_step(real, 0)
    mixed = fast.train_step(real.contiguous(memory_format=torch.channels_last), 0)
    for key in exact:
        assert float(mixed[key]) == pytest.approx(float(exact[key]), rel=0.05, abs=0.02), key


def test_a_gpu_run_resumes_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)  # some cuDNN kernels are not
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    model = gan_preset(coordconv=True, arch="dcgan", generator={"width": 4, "latent_dim": 8},
                       discriminator={"width": 4}).model
    run = RunConfig(steps=6, batch_size=8, eval_every=100, device="cuda", precision="fp32",
                    channels_last=False)
    straight = runs.start(run, model, tmp_path / "a")
    runs.start(replace(run, steps=3), model, tmp_path / "b")
    resumed = runs.resume(tmp_path / "b", steps=6)
    for name in ("generator", "discriminator", "generator_ema"):
        a = torch.load(straight, weights_only=True)["task"]["networks"][name]
        b = torch.load(resumed, weights_only=True)["task"]["networks"][name]
        assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a), name
