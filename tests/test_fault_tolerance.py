"""Runs that survive: signals, divergence, failing disks, damaged and malicious checkpoints."""

from __future__ import annotations

import errno
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import lmdb
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gen import fileio, runs
from gen.checkpoint import CHECKPOINT_NAME, load_checkpoint, load_latest_good, snapshots
from gen.cli import main
from gen.configs import RunConfig
from gen.data.batches import leave_stops_to_the_main_process, run_dataset, starting_workers
from gen.data.natural import LSUN, ImageFolder
from gen.errors import InputError, RunStopped

TINY_CLI = ["train", "gan", "--g-width", "2", "--d-width", "2", "--latent-dim", "4", "--batch-size", "4",
            "--eval-every", "100000", "--eval-samples", "16", "--fid-samples", "0", "--image-every", "100000",
            "--device", "cpu"]


def gen_process(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "gen", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def task_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint's task state (networks, optimisers, noise), flattened."""
    flat = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}/{key}", item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(f"{prefix}/{index}", item)
        elif isinstance(value, torch.Tensor):
            flat[prefix] = value

    walk("", load_checkpoint(path).task)
    return flat


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_the_step_and_resume_matches_an_unbroken_run(tmp_path, sig, wait_for_run_start):
    """SIGTERM or Ctrl-C at a random step: exit 0 with that step saved; resumed, the run ends
    bit-identical to one never stopped (the DCGAN preset has no ramp-down, so the total step
    count does not change its maths)."""
    stopped, unbroken = tmp_path / "stopped", tmp_path / "unbroken"
    process = gen_process(*TINY_CLI, "--steps", "100000", "--ckpt-every", "100000", "--out", str(stopped))
    wait_for_run_start(stopped)
    time.sleep(random.uniform(0.3, 1.0))
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    step = load_checkpoint(stopped).step
    assert f"stopped by {sig.name} after step {step}" in out and f"--resume {stopped}" in out
    assert (stopped / f"checkpoint-{step:07d}.pt").is_file()

    end = str(step + 30)
    resumed = gen_process("train", "gan", "--resume", str(stopped), "--steps", end)
    straight = gen_process(*TINY_CLI, "--steps", end, "--ckpt-every", "100000", "--out", str(unbroken))
    for finished in (resumed, straight):
        _, err = finished.communicate(timeout=120)
        assert finished.returncode == 0, err
    after_resume = task_tensors(stopped / CHECKPOINT_NAME)
    without_stop = task_tensors(unbroken / CHECKPOINT_NAME)
    assert after_resume.keys() == without_stop.keys()
    for key in without_stop:
        assert torch.equal(after_resume[key], without_stop[key]), key


def test_a_second_signal_while_saving_changes_nothing(tmp_path, tiny_run, tiny_gan, monkeypatch):
    """The first signal asks for a stop; a second one arriving during the save is only noted."""
    prepared = runs.prepare_start(tiny_run(steps=50, ckpt_every=1000), tiny_gan, tmp_path / "run")
    train_step = prepared.task.train_step
    handler_before = signal.getsignal(signal.SIGINT)  # ignored, not Python's, under a background shell

    def signalled(real, step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return train_step(real, step)

    saved = []
    original_save = fileio.save_torch

    def save_with_a_second_signal(path, obj):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, mid-save
        original_save(path, obj)
        saved.append(Path(path).name)

    prepared.task.train_step = signalled
    monkeypatch.setattr("gen.checkpoint.save_torch", save_with_a_second_signal)
    outcome = prepared.train()
    assert outcome.stopped_by == "SIGTERM" and outcome.step == 3
    assert saved == ["checkpoint-0000003.pt", CHECKPOINT_NAME]
    assert load_checkpoint(tmp_path / "run").step == 3
    assert signal.getsignal(signal.SIGINT) is handler_before


def test_a_diverged_run_stops_and_keeps_the_last_finite_checkpoint(tmp_path, tiny_run, tiny_gan):
    prepared = runs.prepare_start(tiny_run(steps=20, log_every=2, ckpt_every=2), tiny_gan, tmp_path / "run")
    train_step = prepared.task.train_step

    def poisoned(real, step):
        if step == 5:
            with torch.no_grad():
                next(prepared.task.generator.parameters()).fill_(float("nan"))
        return train_step(real, step)

    prepared.task.train_step = poisoned
    with pytest.raises(RunStopped, match=r"loss/\w+ is nan in the steps up to 6.*checkpoint kept is step 4"):
        prepared.train()
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint.step == 4
    assert all(tensor.isfinite().all() for tensor in task_tensors(tmp_path / "run" / CHECKPOINT_NAME).values()
               if tensor.is_floating_point())


def test_non_finite_weights_are_never_saved(tmp_path, tiny_run, tiny_gan):
    """Weights can go non-finite between log intervals; the save checks them itself."""
    prepared = runs.prepare_start(tiny_run(steps=20, log_every=100, ckpt_every=3), tiny_gan, tmp_path / "run")
    train_step = prepared.task.train_step

    def poisoned(real, step):
        scalars = train_step(real, step)
        if step == 5:
            with torch.no_grad():
                next(prepared.task.discriminator.parameters())[0] = float("inf")
        return scalars

    prepared.task.train_step = poisoned
    with pytest.raises(RunStopped, match="non-finite weights at step 6.*checkpoint kept is step 3"):
        prepared.train()
    assert load_checkpoint(tmp_path / "run").step == 3


def test_divergence_on_the_command_line_is_one_line_and_exit_1(tmp_path):
    result = CliRunner().invoke(main, [*TINY_CLI, "--steps", "300", "--log-every", "10", "--g-lr", "1e30",
                                       "--d-lr", "1e30", "--out", str(tmp_path / "run")])
    assert result.exit_code == 1, result.output
    assert "training diverged" in result.output and "Traceback" not in result.output


def test_keep_bounds_the_snapshots(tmp_path, tiny_run, tiny_gan):
    runs.start(tiny_run(steps=10, ckpt_every=2, keep=2), tiny_gan, tmp_path / "run")
    kept = [path.name for path in snapshots(tmp_path / "run")]
    assert kept == ["checkpoint-0000008.pt", "checkpoint-0000010.pt"]
    assert load_checkpoint(tmp_path / "run").step == 10


def test_a_failing_writer_leaves_the_previous_checkpoint_whole(tmp_path, tiny_run, tiny_gan, monkeypatch):
    prepared = runs.prepare_start(tiny_run(steps=8, ckpt_every=2), tiny_gan, tmp_path / "run")
    original = torch.save
    calls = []

    def disk_full_after_first_checkpoint(obj, path, *args, **kwargs):
        calls.append(path)
        if len(calls) > 2:  # the step-2 snapshot and checkpoint.pt went through
            with open(path, "wb") as half:
                half.write(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_after_first_checkpoint)
    message = "could not write the step 4 checkpoint.*No space left.*previous checkpoint is intact"
    with pytest.raises(RunStopped, match=message):
        prepared.train()
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "run").step == 2
    assert not [path for path in (tmp_path / "run").iterdir() if ".tmp" in path.name]


def test_an_unwritable_run_directory_is_found_at_start(tmp_path, tiny_run, tiny_gan):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(InputError, match="cannot write in the run directory"):
        runs.prepare_start(tiny_run(), tiny_gan, blocker / "run")
    result = CliRunner().invoke(main, [*TINY_CLI, "--steps", "2", "--out", str(blocker / "run")])
    assert result.exit_code == 2 and "cannot write in the run directory" in result.output


def test_resume_falls_back_past_an_unreadable_checkpoint(tmp_path, tiny_run, tiny_gan):
    run_dir = tmp_path / "run"
    runs.start(tiny_run(steps=6, ckpt_every=2), tiny_gan, run_dir)
    (run_dir / CHECKPOINT_NAME).write_bytes((run_dir / CHECKPOINT_NAME).read_bytes()[:100])
    (run_dir / "checkpoint-0000006.pt").write_bytes(b"")
    checkpoint, passed_over = load_latest_good(run_dir)
    assert checkpoint.step == 4
    assert [path.name for path, _ in passed_over] == [CHECKPOINT_NAME, "checkpoint-0000006.pt"]
    resume = ["train", "gan", "--resume", str(run_dir), "--steps", "8", "--keep", "2"]
    result = CliRunner().invoke(main, resume)
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output and "from step 4" in result.output
    assert "set aside as checkpoint-0000006.pt.unreadable" in result.output
    assert load_checkpoint(run_dir).step == 8
    # the damaged files stay, out of the rotation, which kept the newest two good snapshots
    assert {path.name for path in run_dir.glob("*.unreadable")} == {"checkpoint.pt.unreadable",
                                                                   "checkpoint-0000006.pt.unreadable"}
    assert [path.name for path in snapshots(run_dir)] == ["checkpoint-0000006.pt", "checkpoint-0000008.pt"]
    for path in [run_dir / CHECKPOINT_NAME, *snapshots(run_dir)]:
        path.write_bytes(b"junk")
    with pytest.raises(InputError, match="no readable checkpoint"):
        load_latest_good(run_dir)


class Payload:
    """An object whose unpickling runs code: what a malicious checkpoint holds."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_carrying_code_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "code-ran"
    torch.save({"format": 2, "kind": "gan", "config": Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match="holds pickled code or objects, not plain data"):
        load_checkpoint(tmp_path / "evil.pt")
    result = CliRunner().invoke(main, ["sample", str(tmp_path / "evil.pt"), "--out", str(tmp_path / "s.png")])
    assert result.exit_code == 2 and "refused without running it" in result.output
    assert not marker.exists() and not (tmp_path / "s.png").exists()


def test_atomic_writes_are_flushed_to_disk_and_all_or_nothing(tmp_path, monkeypatch):
    synced = []
    original = os.fsync
    monkeypatch.setattr(os, "fsync", lambda descriptor: (synced.append(descriptor), original(descriptor)))
    target = tmp_path / "out.json"
    fileio.save_json(target, {"a": 1})
    assert len(synced) == 2  # the file, then its directory after the rename
    with pytest.raises(RuntimeError), fileio.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer died")
    assert target.read_text().strip().startswith("{") and list(tmp_path.iterdir()) == [target]


def write_bad_folder(root: Path, good: int = 20) -> dict[str, Path]:
    """`good` plain PNGs plus one record of each kind that breaks a naive reader."""
    root.mkdir()
    for i in range(good):
        Image.new("RGB", (24, 24), (10 * i, 100, 0)).save(root / f"good{i:02d}.png")
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), (0, 0, 250)).save(buffer, format="PNG")
    bad = {"truncated": root / "truncated.png", "not-an-image": root / "notes.png",
           "empty": root / "empty.jpg", "cmyk": root / "cmyk.jpg", "16-bit": root / "deep.png"}
    bad["truncated"].write_bytes(buffer.getvalue()[:60])
    bad["not-an-image"].write_text("a text file with an image suffix")
    bad["empty"].write_bytes(b"")
    Image.new("CMYK", (24, 24), (0, 255, 255, 0)).save(bad["cmyk"])  # red, as ink
    Image.fromarray(np.full((24, 24), 40000, dtype=np.uint16)).save(bad["16-bit"])
    return bad


def test_unreadable_records_in_a_folder_are_skipped_and_counted(tmp_path):
    bad = write_bad_folder(tmp_path / "images")
    dataset = ImageFolder(tmp_path / "images", resolution=8)
    index = {path.name: i for i, path in enumerate(dataset.files)}
    red, skipped = dataset[index["cmyk.jpg"]]
    assert skipped == 0 and torch.allclose(red.mean(dim=(1, 2)), torch.tensor([1.0, -1.0, -1.0]), atol=0.05)
    grey, skipped = dataset[index["deep.png"]]
    assert skipped == 0 and torch.allclose(grey, torch.full_like(grey, (40000 >> 8) / 127.5 - 1), atol=0.01)
    image, skipped = dataset[index["truncated.png"]]
    assert skipped >= 1 and image.shape == (3, 8, 8)

    data = run_dataset(RunConfig(steps=1, data="folder", root=str(tmp_path / "images"), resolution=8))
    batches = data.batches(batch_size=5, seed=0, workers=1, device=torch.device("cpu"))
    epoch = [next(batches) for _ in range(len(dataset) // 5)]
    assert all(batch.shape == (5, 3, 8, 8) for batch in epoch)
    # one epoch visits every record once; a bad record just before another bad one counts both
    passed_over = sum(dataset[i][1] for i in range(len(dataset)))
    assert passed_over >= len(bad) - 2  # CMYK and 16-bit decode, the other three do not
    assert batches.counters() == {"data/skipped_records": passed_over}
    assert batches.state_dict()["skipped"] == passed_over


def test_a_run_on_a_folder_with_a_truncated_image_trains_and_logs_the_count(tmp_path):
    write_bad_folder(tmp_path / "images")
    result = CliRunner().invoke(main, [*TINY_CLI, "--data", "folder", "--root", str(tmp_path / "images"),
                                       "--resolution", "32", "--steps", "6", "--log-every", "6",
                                       "--workers", "1", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "skipped_records=" in result.output  # the progress line counts them too
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "run" / "tb"))
    events.Reload()
    assert "data/skipped_records" in events.Tags()["scalars"]


def test_a_source_where_nothing_decodes_is_an_error_at_start(tmp_path):
    (tmp_path / "images").mkdir()
    for i in range(3):
        (tmp_path / "images" / f"{i}.png").write_bytes(b"\x89PNG broken")
    result = CliRunner().invoke(main, [*TINY_CLI, "--data", "folder", "--root", str(tmp_path / "images"),
                                       "--steps", "2", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "no record of image folder" in result.output
    with lmdb.open(str(tmp_path / "lsun"), map_size=1 << 20) as env, env.begin(write=True) as txn:
        txn.put(b"0" * 40, b"")
        txn.put(b"1" * 40, b"not an image")
    with pytest.raises(InputError, match="no record of LSUN lmdb"):
        run_dataset(RunConfig(steps=1, data="lsun", root=str(tmp_path / "lsun"), resolution=8))
    lsun = LSUN(tmp_path / "lsun", resolution=8)
    assert len(lsun) == 2


def test_a_run_of_the_other_kind_or_a_used_directory_is_refused(tmp_path, gan_checkpoint, tiny_run, tiny_gan):
    result = CliRunner().invoke(main, ["train", "vae", "--resume", str(gan_checkpoint.parent)])
    assert result.exit_code == 2
    assert "holds a gan run; continue it with gen train gan --resume" in result.output
    used = tmp_path / "used"
    used.mkdir()
    (used / "config.json").write_text("{}")  # a run killed before its first checkpoint
    with pytest.raises(InputError, match="already holds a run that saved no checkpoint"):
        runs.prepare_start(tiny_run(), tiny_gan, used)
    assert (used / "config.json").read_text() == "{}"


def test_a_short_write_of_torch_save_stops_with_one_line(tmp_path):
    """A real full disk: a file size limit makes torch.save fail mid-write (it raises a
    RuntimeError, not an OSError); the run stops with one line and leaves no partial file."""
    code = ("import resource, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))\n"
            "from gen.cli import main\n"
            f"main({[*TINY_CLI, '--steps', '4', '--ckpt-every', '2', '--out', str(tmp_path / 'run')]!r}, "
            "prog_name='gen')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "could not write the step 2 checkpoint" in result.stderr and "Traceback" not in result.stderr
    assert not [path for path in (tmp_path / "run").iterdir() if path.suffix == ".pt" or ".tmp" in path.name]


def test_runs_from_before_rotation_keep_every_snapshot_unless_told(tmp_path, gan_checkpoint):
    run_dir = tmp_path / "run"
    shutil.copytree(gan_checkpoint.parent, run_dir)
    payload = torch.load(run_dir / CHECKPOINT_NAME, weights_only=True)
    del payload["config"]["run"]["keep"]  # as saved before --keep existed
    torch.save(payload, run_dir / CHECKPOINT_NAME)
    assert load_checkpoint(run_dir).run.keep is None
    assert runs.prepare_resume(run_dir, steps=12).run.keep is None
    assert runs.prepare_resume(run_dir, steps=12, keep=3).run.keep == 3


def test_data_loader_workers_leave_a_group_signal_to_the_main_process(tmp_path, wait_for_run_start):
    """A scheduler (or torchrun) signals the whole process group; a folder run with loader
    workers still stops at a saved step instead of dying with its workers."""
    write_bad_folder(tmp_path / "images")
    command = [sys.executable, "-m", "gen", *TINY_CLI, "--data", "folder", "--root", str(tmp_path / "images"),
               "--resolution", "32", "--workers", "1", "--steps", "100000", "--out", str(tmp_path / "run")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    wait_for_run_start(tmp_path / "run")
    time.sleep(1.5)
    os.killpg(process.pid, signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "stopped by SIGTERM" in out and load_checkpoint(tmp_path / "run").step > 0


def test_loader_workers_start_with_the_stop_signals_blocked():
    """A group SIGTERM in the moment between a worker's fork and its init function waits,
    and the init function discards it: the worker lives (it used to die, now and then, at
    the start of an epoch)."""
    with starting_workers():
        pid = os.fork()
        if pid == 0:  # the worker's side
            os.kill(os.getpid(), signal.SIGTERM)  # arrives before the init function
            leave_stops_to_the_main_process(0)
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def wait_for_lock(run_dir: Path, process: subprocess.Popen) -> None:
    """Wait until a training process holds the run directory's lock (it then trains)."""
    lock = run_dir / runs.RunLock.NAME
    deadline = time.monotonic() + 60
    while not (lock.is_file() and f"process {process.pid}" in lock.read_text()):
        assert time.monotonic() < deadline and process.poll() is None, "the run never took the lock"
        time.sleep(0.05)


def test_a_second_writer_on_a_run_directory_is_refused_in_one_line(tmp_path):
    """A resume, or a new run, on a directory another process is training gets one line and
    exit 2; the first run goes on and ends as if alone."""
    run_dir = tmp_path / "run"
    runs.start(RunConfig(steps=2, batch_size=4, eval_every=100, device="cpu"), tiny_model(), run_dir)
    first = gen_process("train", "gan", "--resume", str(run_dir), "--steps", "100000")
    wait_for_lock(run_dir, first)
    try:
        for args, message in [(["train", "gan", "--resume", str(run_dir), "--steps", "200000"],
                               f"is being written by process {first.pid}"),
                              ([*TINY_CLI, "--steps", "3", "--out", str(run_dir)], "already holds a run")]:
            second = subprocess.run([sys.executable, "-m", "gen", *args], capture_output=True, text=True,
                                    timeout=120)
            assert second.returncode == 2 and message in second.stderr, second.stderr
            assert len(second.stderr.strip().splitlines()) == 1
    finally:
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert f"after step {load_checkpoint(run_dir).step}" in out


def test_a_crashed_runs_lock_does_not_block_its_resume(tmp_path):
    run_dir = tmp_path / "run"
    runs.start(RunConfig(steps=2, batch_size=4, eval_every=100, device="cpu"), tiny_model(), run_dir)
    holder = gen_process("train", "gan", "--resume", str(run_dir), "--steps", "100000")
    wait_for_lock(run_dir, holder)
    holder.kill()  # SIGKILL: no handler runs, the process releases nothing itself
    holder.communicate(timeout=60)
    resumed = CliRunner().invoke(main, ["train", "gan", "--resume", str(run_dir), "--steps", "4"])
    assert resumed.exit_code == 0, resumed.output
    assert load_checkpoint(run_dir).step == 4


def tiny_model():
    from gen.gan.config import gan_preset

    return gan_preset(generator={"width": 2, "latent_dim": 4}, discriminator={"width": 2}).model
