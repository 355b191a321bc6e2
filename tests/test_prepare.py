"""gen data prepare: decode once, skip and count bad records, resume, train from the result."""

from __future__ import annotations

import io
import json

import lmdb
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gen.cli import main
from gen.configs import RunConfig
from gen.data import batches as batches_module
from gen.data import prepare as prepare_module
from gen.data.batches import run_dataset
from gen.data.natural import LSUN, ImageFolder
from gen.data.prepare import PreparedImages, prepare
from gen.errors import InputError


@pytest.fixture
def folder(tmp_path):
    """30 images of different sizes and colours, plus a text file and a truncated PNG."""
    root = tmp_path / "images"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(30):
        pixels = rng.integers(0, 256, size=(40 + i, 60, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{i:02d}.png")
    (root / "notes.png").write_text("not an image")
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20)).save(buffer, format="PNG")
    (root / "truncated.png").write_bytes(buffer.getvalue()[:50])
    return root


def test_prepared_pixels_are_what_training_decodes(folder, tmp_path):
    manifest = prepare("folder", folder, 32, tmp_path / "out", workers=2)
    assert manifest["count"] == 30 and manifest["skipped_total"] == 2 and manifest["records"] == 32
    assert json.loads((tmp_path / "out" / "manifest.json").read_text()) == manifest
    names = (tmp_path / "out" / "sources.txt").read_text().splitlines()
    assert names == [f"{i:02d}.png" for i in range(30)]
    prepared, source = PreparedImages(tmp_path / "out", 32), ImageFolder(folder, 32)
    for index in (0, 17, 29):
        image, skipped = prepared[index]
        decoded = source.decode(source.files.index(folder / names[index]))
        assert skipped == 0 and torch.allclose(image, decoded, atol=1e-6)


def encoded(size: tuple[int, int], colour: tuple[int, int, int], kind: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=kind)
    return buffer.getvalue()


def write_lsun(root, records: dict[bytes, bytes]) -> None:
    """An LSUN-layout lmdb under root/bedroom_train_lmdb."""
    path = root / "bedroom_train_lmdb"
    path.mkdir(parents=True)
    with lmdb.open(str(path), map_size=1 << 24) as env, env.begin(write=True) as txn:
        for key, value in records.items():
            txn.put(key, value)


def test_lsun_prepare_takes_the_first_records_and_names_their_keys(tmp_path):
    records = {f"{i:040x}".encode(): encoded((80, 60), (20 * i, 0, 0), "WEBP") for i in range(12)}
    write_lsun(tmp_path / "lsun", {**records, b"f" * 40: b""})
    reader = LSUN(tmp_path / "lsun", 64)  # the database is already open in this process
    assert reader[0][1] == 0
    manifest = prepare("lsun", tmp_path / "lsun", 64, tmp_path / "out", workers=2, limit=10)
    assert manifest["count"] == 10 and manifest["skipped_total"] == 0
    second = LSUN(tmp_path / "lsun", 64)  # another reader; the first still reads
    assert second[12][1] == 1 and reader[5][1] == 0  # record 12, the empty one, is skipped
    assert (tmp_path / "out" / "sources.txt").read_text().splitlines() == [f"{i:040x}" for i in range(10)]


def test_an_lmdb_with_corrupt_records_prepares_from_the_cli_and_trains(tmp_path):
    jpegs = [encoded((90, 64), (25 * i, 100, 0), "JPEG") for i in range(10)]
    records = {f"{i:040x}".encode(): jpeg if i % 4 else jpeg[:100]  # 3 truncated
               for i, jpeg in enumerate(jpegs)}
    write_lsun(tmp_path / "lsun", {**records, b"e" * 40: b"not an image"})
    runner = CliRunner()
    result = runner.invoke(main, ["data", "prepare", "lsun", "--root", str(tmp_path / "lsun"), "--resolution",
                                  "64", "--out", str(tmp_path / "bedrooms"), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "7 images of 64 px, 4 unreadable records skipped" in result.output
    manifest = json.loads((tmp_path / "bedrooms" / "manifest.json").read_text())
    assert sum(manifest["skipped"].values()) == 4
    train = ["train", "gan", "--data", "prepared", "--root", str(tmp_path / "bedrooms"), "--steps", "2",
             "--batch-size", "4", "--g-width", "2", "--d-width", "2", "--fid-samples", "0", "--device", "cpu",
             "--out", str(tmp_path / "run")]
    result = runner.invoke(main, train)
    assert result.exit_code == 0 and (tmp_path / "run" / "checkpoint.pt").is_file(), result.output


def test_an_interrupted_preparation_never_looks_done_and_resumes_to_the_same_result(folder, tmp_path,
                                                                                     monkeypatch):
    monkeypatch.setattr(prepare_module, "CHUNK", 8)
    saved = []
    original = prepare_module.save_json

    def interrupted_after_two_chunks(path, obj):
        if len(saved) == 2:
            raise KeyboardInterrupt
        saved.append(path)
        original(path, obj)

    monkeypatch.setattr(prepare_module, "save_json", interrupted_after_two_chunks)
    with pytest.raises(KeyboardInterrupt):
        prepare("folder", folder, 16, tmp_path / "out", workers=2)
    assert not (tmp_path / "out").exists() and (tmp_path / "out.partial").is_dir()
    with pytest.raises(InputError, match="is not finished"):
        PreparedImages(tmp_path / "out", 16)
    monkeypatch.setattr(prepare_module, "save_json", original)
    resumed = prepare("folder", folder, 16, tmp_path / "out", workers=2)
    clean = prepare("folder", folder, 16, tmp_path / "clean", workers=1)
    assert {**resumed, "root": None} == {**clean, "root": None}
    for name in ("images.u8", "sources.txt"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()
    assert not (tmp_path / "out.partial").exists()
    with pytest.raises(InputError, match="other settings"):
        (tmp_path / "again.partial").mkdir()
        (tmp_path / "again.partial" / "progress.json").write_text(json.dumps({"resolution": 64}))
        prepare("folder", folder, 16, tmp_path / "again")


@pytest.mark.parametrize("on_device", [True, False], ids=["held-on-device", "memory-mapped"])
def test_training_reads_a_prepared_set_and_measures_fid(folder, tmp_path, monkeypatch, on_device,
                                                         inception_weights):
    prepare("folder", folder, 32, tmp_path / "out", workers=1)
    monkeypatch.setattr(batches_module, "fits_on", lambda device, size: on_device)
    data = run_dataset(RunConfig(steps=1, data="prepared", root=str(tmp_path / "out"), resolution=32))
    assert (data.held is not None) == on_device
    batch = next(data.batches(4, seed=0, workers=0, device=torch.device("cpu")))
    assert batch.shape == (4, 3, 32, 32) and batch.min() >= -1 and batch.max() <= 1
    train = ["train", "gan", "--data", "prepared", "--root", str(tmp_path / "out"), "--resolution", "32",
             "--steps", "2", "--batch-size", "4", "--g-width", "2", "--d-width", "2", "--workers", "0",
             "--device", "cpu", "--out", str(tmp_path / "run")]
    measure = ["--fid-samples", "12", "--inception-weights", str(inception_weights)]
    result = CliRunner().invoke(main, train + (["--fid-samples", "0"] if on_device else measure))
    assert result.exit_code == 0, result.output
    if on_device:
        return  # measuring the run is the same either way
    measured = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert measured["step"] == 2 and measured["fid"] > 0 and measured["generated_count"] == 12
    fid = CliRunner().invoke(main, ["metrics", "fid", str(tmp_path / "run"), "--ref", str(tmp_path / "out"),
                                    "--n", "12", "--inception-weights", str(inception_weights)])
    assert fid.exit_code == 0 and "12 generated, 12 reference" in fid.output, fid.output
    video = CliRunner().invoke(main, ["interpolate", str(tmp_path / "run"), "--out",
                                      str(tmp_path / "path.png"),
                                      "--grid", "1x2", "--keyframes", "2", "--frames-per-segment", "3"])
    assert video.exit_code == 0 and (tmp_path / "path.png").is_file(), video.output


def test_prepare_and_prepared_input_errors_are_one_line(folder, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["data", "prepare", "folder", "--root", str(folder), "--resolution", "64",
                                  "--out", str(tmp_path / "out")])
    assert result.exit_code == 0 and "30 images of 64 px, 2 unreadable records skipped" in result.output
    for args, message in (
        (["data", "prepare", "folder", "--root", str(folder), "--out", str(tmp_path / "out")],
         "already exists"),
        (["train", "gan", "--data", "prepared", "--root", str(tmp_path / "out"), "--resolution", "128"],
         "was prepared at 64 px"),
        (["train", "gan", "--data", "prepared", "--root", str(folder)], "not a prepared dataset"),
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.parametrize(("content", "count", "kept"), [
    (b"a\nb\nc\n", 2, b"a\nb\n"), (b"a\nb\npart", 2, b"a\nb\n"), (b"a\nb\nc", 3, b"a\nb\nc\n"),
    (b"a\n", 0, b"")])
def test_a_resume_keeps_the_saved_lines_of_sources_txt(tmp_path, content, count, kept):
    path = tmp_path / "sources.txt"
    path.write_bytes(content)
    with open(path, "a", encoding="utf-8") as handle:
        prepare_module._truncate_lines(path, handle, count)
        handle.write("next\n")
    assert path.read_bytes() == kept + b"next\n"


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """A machine that cannot download the Inception weights and has none cached or named."""
    monkeypatch.delenv("GEN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def no_network(*args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)


@pytest.mark.parametrize("source", ["folder", "lsun", "prepared"])
def test_offline_natural_image_runs_train_without_fid_and_say_so_once(folder, tmp_path, offline, source):
    roots = {"folder": folder, "lsun": tmp_path / "lsun", "prepared": tmp_path / "prepared"}
    if source == "lsun":
        write_lsun(roots["lsun"], {f"{i:040x}".encode(): encoded((40, 50), (20 * i, 0, 0), "JPEG")
                                   for i in range(8)} | {b"e" * 40: b"not an image"})
    if source == "prepared":
        prepare("folder", folder, 32, roots["prepared"], workers=1)
    train = ["train", "gan", "--data", source, "--root", str(roots[source]), "--resolution", "32",
             "--steps", "2", "--batch-size", "4", "--g-width", "2", "--d-width", "2", "--workers", "0",
             "--device", "cpu", "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(main, train)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "FID is off" in warnings[0] and "--inception-weights" in warnings[0]
    measured = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert measured["fid"] is None and "could not download" in measured["fid_unavailable"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "run" / "tb"), size_guidance={"tensors": 0})
    events.Reload()
    assert "metrics/fid_unavailable/text_summary" in events.Tags()["tensors"]


def test_offline_fid_asked_for_is_still_a_one_line_error(folder, tmp_path, offline):
    train = ["train", "gan", "--data", "folder", "--root", str(folder), "--resolution", "32", "--steps", "2",
             "--fid-samples", "8", "--device", "cpu", "--out", str(tmp_path / "run")]
    images = tmp_path / "images.npz"
    np.savez(images, images=np.zeros((4, 32, 32, 3), np.uint8))
    for command in (train, ["metrics", "fid", str(images), "--ref", str(images)]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2 and "could not download" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
