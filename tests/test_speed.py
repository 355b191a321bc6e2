"""Fast paths (gen.speed): bf16 autocast, channels_last, torch.compile, fused Adam; each the
same maths as the default path within its precision."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from gen import runs
from gen.checkpoint import load_checkpoint
from gen.configs import RunConfig
from gen.families import build_task
from gen.speed import apply_fast_paths, channels_last_on, precision_of
from gen.task import adam


def first_losses(task, batch: torch.Tensor) -> dict[str, float]:
    return {key: float(value) for key, value in task.train_step(batch, step=0).items()}


@pytest.fixture
def real_batch() -> torch.Tensor:
    return torch.rand(8, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.mark.parametrize("family", ["gan", "vae"])
def test_a_bf16_step_matches_fp32_within_bf16_precision(family, tiny_gan, tiny_vae, real_batch, tiny_run):
    model = (tiny_gan if family == "gan" else tiny_vae()).for_data(1, 64)
    fp32 = build_task(model, torch.device("cpu"), seed=0)
    bf16 = copy.deepcopy(fp32)
    apply_fast_paths(bf16, tiny_run(precision="bf16"), torch.device("cpu"))
    assert bf16.precision == torch.bfloat16 and fp32.precision == torch.float32
    exact, mixed = first_losses(fp32, real_batch), first_losses(bf16, real_batch)
    assert exact.keys() == mixed.keys()
    for key in exact:
        assert mixed[key] == pytest.approx(exact[key], rel=0.03, abs=0.01), key
    assert any(mixed[key] != exact[key] for key in exact)  # it did run in bf16
    for name, network in bf16.networks().items():  # master weights stay fp32
        assert all(p.dtype == torch.float32 for p in network.parameters()), name


def test_channels_last_networks_compute_the_same_step(tiny_gan, real_batch, tiny_run):
    nchw = build_task(tiny_gan.for_data(1, 64), torch.device("cpu"), seed=0)
    nhwc = copy.deepcopy(nchw)
    apply_fast_paths(nhwc, tiny_run(channels_last=True), torch.device("cpu"))
    weight = next(p for p in nhwc.discriminator.parameters() if p.dim() == 4)
    assert weight.is_contiguous(memory_format=torch.channels_last)
    exact, reordered = first_losses(nchw, real_batch), first_losses(nhwc, real_batch)
    for key in exact:
        assert reordered[key] == pytest.approx(exact[key], rel=1e-4, abs=1e-5), key


def test_auto_turns_fast_paths_on_for_gpus_only(monkeypatch):
    auto = RunConfig(steps=1)
    assert precision_of(auto, torch.device("cpu")) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert precision_of(auto, torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert precision_of(auto, torch.device("cuda")) == torch.float32  # emulated bf16 is slower than fp32
    assert precision_of(RunConfig(steps=1, precision="bf16"), torch.device("cpu")) == torch.bfloat16
    assert not channels_last_on(auto, torch.device("cpu")) and channels_last_on(auto, torch.device("cuda"))
    assert not channels_last_on(RunConfig(steps=1, channels_last=False), torch.device("cuda"))


def test_adam_is_fused_on_gpus_and_the_default_on_the_cpu():
    weights = [torch.nn.Parameter(torch.zeros(3))]
    assert not adam(weights, 1e-3, torch.device("cpu")).defaults["fused"]
    assert adam(weights, 1e-3, torch.device("cuda")).defaults["fused"]


def test_a_bf16_run_trains_resumes_and_keeps_the_checkpoint_format(tmp_path, tiny_run, tiny_gan):
    checkpoint = runs.start(tiny_run(precision="bf16", channels_last=True), tiny_gan, tmp_path / "run")
    record = load_checkpoint(checkpoint)
    assert record.run.precision == "bf16"
    assert all(value.dtype == torch.float32 for value in record.task["networks"]["generator"].values()
               if value.is_floating_point())
    resumed = runs.prepare_resume(tmp_path / "run", steps=6, precision="fp32")
    assert resumed.task.precision == torch.float32
    resumed.train()
    assert load_checkpoint(tmp_path / "run").step == 6


def test_compile_leaves_out_a_discriminator_whose_r1_needs_double_backward(tiny_gan):
    with_r1 = build_task(tiny_gan.for_data(1, 64), torch.device("cpu"))
    assert set(with_r1.compiled_networks()) == {"generator"}
    without = build_task(dataclasses.replace(tiny_gan, r1_gamma=0.0).for_data(1, 64), torch.device("cpu"))
    assert set(without.compiled_networks()) == {"generator", "discriminator"}


@pytest.mark.slow
def test_a_compiled_step_matches_the_eager_one(tiny_gan, real_batch, tiny_run):
    """torch.compile on the CPU (inductor, about 20 s of compiling)."""
    eager = build_task(tiny_gan.for_data(1, 64), torch.device("cpu"), seed=0)
    compiled = copy.deepcopy(eager)
    apply_fast_paths(compiled, tiny_run(compile=True), torch.device("cpu"))
    for step in range(3):  # R1 on steps 0 and 2
        exact, fast = eager.train_step(real_batch, step), compiled.train_step(real_batch, step)
        for key in exact:
            assert float(fast[key]) == pytest.approx(float(exact[key]), rel=1e-4, abs=1e-6), (step, key)
    assert compiled.state_dict()["networks"].keys() == eager.state_dict()["networks"].keys()


def test_resumed_optimiser_state_takes_the_weights_layout_and_adam_fuses_on_gpus_only(tiny_gan, real_batch,
                                                                                      tiny_run):
    saved = build_task(tiny_gan.for_data(1, 64), torch.device("cpu"), seed=0)
    apply_fast_paths(saved, tiny_run(channels_last=True), torch.device("cpu"))
    saved.train_step(real_batch, 1)
    for group in saved.optimizers()["discriminator"].param_groups:
        group["fused"] = True  # as a GPU run saves it
    resumed = build_task(tiny_gan.for_data(1, 64), torch.device("cpu"), seed=0)
    resumed.load_state_dict(saved.state_dict())  # Adam's moments arrive in the saved NHWC layout
    apply_fast_paths(resumed, tiny_run(channels_last=False), torch.device("cpu"))
    for optimizer in resumed.optimizers().values():
        assert all(group["fused"] is None for group in optimizer.param_groups)
        for weight, state in optimizer.state.items():
            assert state["exp_avg"].stride() == state["exp_avg_sq"].stride() == weight.stride()
    moments = saved.optimizers()["discriminator"].state
    for state in resumed.optimizers()["discriminator"].state.values():  # the same values, relaid
        assert any(torch.equal(state["exp_avg"], other["exp_avg"]) for other in moments.values())


def test_a_vae_compiles_the_encoder_and_decoder_its_step_calls(tiny_vae):
    task = build_task(tiny_vae().for_data(1, 64), torch.device("cpu"))
    assert task.compiled_networks() == {"encoder": task.vae.encoder, "decoder": task.vae.decoder}
