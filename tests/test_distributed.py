"""torchrun training: world-size independent maths, rank 0 writes, single-process checkpoints."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gen.checkpoint import load_checkpoint
from gen.configs import RunConfig
from gen.data.batches import TensorBatches, run_dataset
from gen.distributed import World
from gen.errors import InputError

TINY = ["train", "gan", "--coordconv", "--g-width", "2", "--d-width", "2", "--latent-dim", "4",
        "--batch-size", "4", "--no-minibatch-std", "--eval-every", "100000", "--eval-samples", "16",
        "--image-every", "100000", "--lr-rampdown", "0", "--device", "cpu"]


def gen_run(*args: str, processes: int = 1) -> subprocess.CompletedProcess:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                 str(processes), "-m", "gen"] if processes > 1 else [sys.executable, "-m", "gen"])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*launcher, *args], capture_output=True, text=True, env=env, timeout=300)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    networks = load_checkpoint(run_dir).task["networks"]
    return {f"{net}/{key}": value for net, state in networks.items() for key, value in state.items()}


def test_two_processes_train_the_same_model_as_one(tmp_path):
    """Tiled G, R1 every 4 steps, two G steps and EMA, minibatch-std off, no ramp-down (the
    resume changes the total): a 2-process run of global batch 4, trained to step 5 and
    resumed under torchrun to 8, matches a 1-process run within float rounding (the ranks also
    check at the end that their weights are identical); its checkpoint has the
    single-process format that `gen sample` reads."""
    one, two = tmp_path / "one", tmp_path / "two"
    assert gen_run(*TINY, "--steps", "8", "--out", str(one)).returncode == 0
    first = gen_run(*TINY, "--steps", "5", "--out", str(two), processes=2)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("run directory:") == 1  # rank 0 alone speaks and writes
    resumed = gen_run("train", "gan", "--resume", str(two), "--steps", "8", processes=2)
    assert resumed.returncode == 0, resumed.stderr
    single, double = weights(one), weights(two)
    assert single.keys() == double.keys()
    for key in single:
        assert torch.allclose(single[key].float(), double[key].float(), atol=1e-4), key
    sample = gen_run("sample", str(two), "--n", "4", "--out", str(tmp_path / "s.npz"), "--device", "cpu")
    assert sample.returncode == 0, sample.stderr


def test_an_indivisible_batch_is_bad_input_on_every_rank(tmp_path):
    result = gen_run(*TINY, "--batch-size", "5", "--steps", "2", "--out", str(tmp_path / "run"), processes=2)
    assert result.returncode != 0
    assert "--batch-size 5 does not split over 2 processes" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_failed_evaluation_on_rank_0_stops_every_rank(tmp_path):
    """Rank 0 cannot write the step-2 metrics (a directory stands where metrics.json goes):
    the job stops with the one-line error (rank 1 learns it at the evaluation's agreement
    rather than in the next step's all-reduce), and the step-2 checkpoint, saved before the
    evaluation, is kept."""
    run_dir = tmp_path / "run"
    (run_dir / "metrics.json").mkdir(parents=True)
    result = gen_run(*TINY, "--steps", "4", "--eval-every", "2", "--ckpt-every", "2", "--out", str(run_dir),
                     processes=2)
    assert result.returncode != 0
    assert "could not write the step 2 metrics" in result.stderr
    assert "Connection closed" not in result.stderr  # no rank was left in a collective rank 0 had quit
    assert load_checkpoint(run_dir).step == 2


def test_ranks_draw_disjoint_slices_of_the_global_batch():
    images = torch.arange(50, dtype=torch.uint8).view(50, 1, 1, 1)
    whole = [next(TensorBatches(images, 6, seed=3)) for _ in range(1)][0]
    halves = [next(TensorBatches(images, 6, seed=3, world=World(rank, 2))) for rank in (0, 1)]
    assert torch.equal(torch.cat(halves), whole)
    with pytest.raises(InputError, match="does not split over 4 processes"):
        World(0, 4).local_batch(6)


def test_file_sources_give_each_rank_its_slice_of_each_epoch(tmp_path):
    for i in range(10):
        Image.fromarray(np.full((4, 4, 3), 20 * i, dtype=np.uint8)).save(tmp_path / f"{i}.png")
    data = run_dataset(RunConfig(steps=1, data="folder", root=str(tmp_path), resolution=4))

    def epoch(world: World) -> list[torch.Tensor]:
        batches = data.batches(4, seed=0, workers=0, device=torch.device("cpu"), world=world)
        return [next(batches) for _ in range(2)]

    whole = epoch(World())
    ranks = [epoch(World(rank, 2)) for rank in (0, 1)]
    for index, batch in enumerate(whole):
        assert torch.equal(torch.cat([ranks[0][index], ranks[1][index]]), batch)


def test_sigterm_to_torchrun_stops_every_rank_at_one_saved_step(tmp_path, wait_for_run_start):
    """torchrun forwards the signal to each rank; they agree on the step, rank 0 saves it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "gen", *TINY, "--steps", "100000", "--out", str(tmp_path / "run")]
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    wait_for_run_start(tmp_path / "run", timeout=120)
    time.sleep(1.0)
    launcher.send_signal(signal.SIGTERM)
    out, _ = launcher.communicate(timeout=120)
    step = load_checkpoint(tmp_path / "run").step
    assert 0 < step < 100000
    assert f"stopped by SIGTERM after step {step}" in out
    assert "torchrun --nproc_per_node 2 -m gen train gan --resume" in out


def test_sync_bn_makes_a_batchnorm_generator_train_the_same_at_two_processes(tmp_path):
    """The DCGAN G normalises with BatchNorm: with --sync-bn a 2-process run matches a
    1-process run of the same global batch (without it each rank would normalise its own
    half, and the weights would part)."""
    dcgan = ["train", "gan", "--arch", "dcgan", "--g-width", "2", "--d-width", "2", "--latent-dim", "4",
             "--batch-size", "8", "--no-minibatch-std", "--eval-every", "100000", "--eval-samples", "16",
             "--image-every", "100000", "--device", "cpu", "--steps", "4"]
    for name, processes in {"one": 1, "synced": 2}.items():
        result = gen_run(*dcgan, "--sync-bn", "--out", str(tmp_path / name), processes=processes)
        assert result.returncode == 0, result.stderr
    one, synced = weights(tmp_path / "one"), weights(tmp_path / "synced")
    for key in one:
        assert torch.allclose(one[key].float(), synced[key].float(), atol=1e-4), key


@pytest.fixture
def one_rank_group(tmp_path):
    """A gloo process group of this process alone: the all-reduce runs, and sums to itself."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_synced_batch_norm_is_batch_norm_in_fp32_and_bf16(one_rank_group):
    from gen.distributed import synchronise_batch_norm

    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.BatchNorm2d(3))
    synced = synchronise_batch_norm(copy.deepcopy(plain))
    x = torch.randn(4, 3, 5, 5) * 0.5 + 8  # a large mean: E[x^2] - E[x]^2 cancels
    weights = torch.randn(4, 3, 5, 5)
    inputs = [x.clone().requires_grad_() for _ in range(2)]
    expected, got = plain(inputs[0]), synced(inputs[1])
    assert torch.allclose(got, expected, atol=1e-4)
    for out in (expected, got):
        (out * weights).sum().backward()
    assert torch.allclose(synced[0].weight.grad, plain[0].weight.grad, rtol=1e-4, atol=1e-4)
    assert torch.allclose(inputs[1].grad, inputs[0].grad, rtol=1e-3, atol=1e-3)
    assert torch.allclose(synced[0].running_var, plain[0].running_var, rtol=1e-4)
    rounded = x.bfloat16()  # as under bf16 autocast: statistics stay fp32, the output is bf16
    half, reference = synced(rounded), plain(rounded.float()).detach()
    assert half.dtype == torch.bfloat16 and torch.allclose(half.float(), reference, atol=0.02)
    assert synced[0].running_mean.dtype == torch.float32
