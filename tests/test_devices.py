import platform
import shutil

import pytest
import torch

from gen import runs
from gen.checkpoint import CHECKPOINT_NAME, load_checkpoint
from gen.devices import keep_freed_host_memory, resolve_device, restore_generator
from gen.errors import InputError
from gen.sampling import sample_images


def test_resolve_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without CUDA")
def test_cuda_without_cuda_is_an_input_error():
    with pytest.raises(InputError, match="no CUDA device"):
        resolve_device("cuda")


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_keep_freed_host_memory_applies_on_glibc():
    assert keep_freed_host_memory() is True


def cuda_shaped_state(seed: int) -> torch.Tensor:
    """What a CUDA generator's get_state() holds (Philox seed and offset, 16 bytes)."""
    return torch.tensor([seed, 0], dtype=torch.int64).view(torch.uint8)


def test_restore_generator_same_device_continues_the_stream():
    saved = torch.Generator().manual_seed(3)
    torch.rand(5, generator=saved)
    restored = torch.Generator()
    restore_generator(restored, saved.get_state())
    assert torch.equal(torch.rand(5, generator=restored), torch.rand(5, generator=saved))


def test_restore_generator_from_another_device_type_is_seeded_reproducibly():
    draws = []
    for state in (cuda_shaped_state(7), cuda_shaped_state(7), cuda_shaped_state(8)):
        generator = torch.Generator()
        restore_generator(generator, state)
        draws.append(torch.rand(5, generator=generator))
    assert torch.equal(draws[0], draws[1])
    assert not torch.equal(draws[0], draws[2])


def test_a_cuda_runs_checkpoint_samples_and_resumes_on_cpu(gan_checkpoint, tmp_path):
    """A CUDA run's checkpoint holds CUDA generator states (found on a GPU machine: loading
    one on CPU failed in set_state); on CPU it samples and resumes."""
    run_dir = tmp_path / "run"
    shutil.copytree(gan_checkpoint.parent, run_dir)
    payload = torch.load(run_dir / CHECKPOINT_NAME, weights_only=True)
    payload["task"]["noise"] = cuda_shaped_state(11)
    payload["data"]["generator"] = cuda_shaped_state(12)
    torch.save(payload, run_dir / CHECKPOINT_NAME)
    assert sample_images(run_dir / CHECKPOINT_NAME, 4, 0, "cpu").shape[0] == 4
    resumed = runs.prepare_resume(run_dir, steps=payload["step"] + 2, device="cpu")
    resumed.train()
    assert load_checkpoint(run_dir / CHECKPOINT_NAME).step == payload["step"] + 2
