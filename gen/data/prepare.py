"""Prepared datasets: decode LSUN or an image folder once, keep uint8 pixels on disk.

`prepare` decodes every record in parallel worker processes (resize and centre-crop as
training does), skips and counts unreadable ones, and writes a folder holding
`images.u8` (raw uint8, N x R x R x 3, row-major: memory-mappable, no pickle),
`sources.txt` (each image's lmdb key or relative path, one per line) and `manifest.json`
(source, resolution, count, shape, skipped records by reason). It writes into
`OUT.partial/` and renames it to OUT only when complete, so an interrupted preparation never
looks finished, and a rerun continues where it stopped. Training reads the folder with
`--data prepared --root OUT` (`PreparedImages`).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from gen.data.natural import LSUN, UNREADABLE, ImageFolder, SkippingDataset
from gen.errors import InputError
from gen.fileio import fsync_path, save_json

MANIFEST = "manifest.json"
IMAGES = "images.u8"
SOURCES = "sources.txt"
PROGRESS = "progress.json"
CHUNK = 256  # records per task handed to a worker


def open_source(kind: str, root: str | os.PathLike, resolution: int) -> SkippingDataset:
    if kind == "lsun":
        return LSUN(root, resolution)
    if kind == "folder":
        return ImageFolder(root, resolution)
    raise InputError(f"unknown source {kind!r}; choose lsun or folder")


_SOURCE: SkippingDataset | None = None


def _set_source(source: SkippingDataset) -> None:
    global _SOURCE
    _SOURCE = source


def _decode_chunk(indices: range) -> tuple[np.ndarray, list[int], list[str]]:
    """(uint8 images, the indices that decoded, the error type of each that did not)."""
    images, kept, failures = [], [], []
    for index in indices:
        try:
            images.append(np.asarray(_SOURCE.rgb(index), dtype=np.uint8))
            kept.append(index)
        except UNREADABLE as error:
            failures.append(type(error).__name__)
    size = _SOURCE.resolution
    stacked = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return stacked, kept, failures


def _chunks(start: int, stop: int) -> Iterator[range]:
    for first in range(start, stop, CHUNK):
        yield range(first, min(first + CHUNK, stop))


def prepare(kind: str, root: str | os.PathLike, resolution: int, out: str | os.PathLike,
            workers: int = 2, limit: int | None = None) -> dict:
    """Prepare the first `limit` records (default all) of a source into `out`; returns the
    manifest. Resumes an interrupted preparation of the same source and settings."""
    out = Path(out)
    if out.exists():
        raise InputError(f"{out} already exists; choose another --out")
    source = open_source(kind, root, resolution)
    total = len(source) if limit is None else min(limit, len(source))
    settings = {"source": kind, "root": str(Path(root).resolve()), "resolution": resolution, "records": total}
    partial = out.with_name(out.name + ".partial")
    state = _resume_state(partial, settings)
    partial.mkdir(parents=True, exist_ok=True)
    names = source.record_names()
    done, count, skipped = state["next"], state["count"], Counter(state["skipped"])
    image_bytes = resolution * resolution * 3
    with open(partial / IMAGES, "r+b" if (partial / IMAGES).exists() else "wb") as images, \
            open(partial / SOURCES, "a", encoding="utf-8") as kept_names:
        images.truncate(count * image_bytes)  # drop rows written after the last saved progress
        images.seek(count * image_bytes)
        _truncate_lines(partial / SOURCES, kept_names, count)
        context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        with tqdm(total=total, initial=done, desc=f"prepare {kind}", unit="img", dynamic_ncols=True) as bar, \
                context.Pool(max(1, workers), initializer=_set_source, initargs=(source,)) as pool:
            for chunk, (decoded, kept, failures) in zip(_chunks(done, total),
                                                        pool.imap(_decode_chunk, _chunks(done, total))):
                images.write(decoded.tobytes())
                kept_names.writelines(names[index] + "\n" for index in kept)
                done, count = chunk.stop, count + len(kept)
                skipped.update(failures)
                images.flush()
                kept_names.flush()
                save_json(partial / PROGRESS, {**settings, "next": done, "count": count, "skipped": skipped})
                bar.update(len(chunk))
        os.fsync(images.fileno())
        os.fsync(kept_names.fileno())
    if count == 0:
        shutil.rmtree(partial)
        raise InputError(f"no record of {source.source()} decodes as an image")
    manifest = {**settings, "count": count, "shape": [count, resolution, resolution, 3], "dtype": "uint8",
                "images": IMAGES, "sources": SOURCES, "skipped": dict(skipped),
                "skipped_total": sum(skipped.values())}
    save_json(partial / MANIFEST, manifest)
    (partial / PROGRESS).unlink()
    os.replace(partial, out)
    fsync_path(out.parent)
    return manifest


def _resume_state(partial: Path, settings: dict) -> dict:
    """Where an interrupted preparation of the same settings stopped, else the start."""
    fresh = {"next": 0, "count": 0, "skipped": {}}
    progress = partial / PROGRESS
    if not progress.is_file():
        if partial.exists():
            shutil.rmtree(partial)  # a start that saved no progress: nothing to keep
        return fresh
    saved = json.loads(progress.read_text())
    if {key: saved.get(key) for key in settings} != settings:
        raise InputError(f"{partial} holds an interrupted preparation of other settings; remove it or "
                         "choose another --out")
    return {key: saved[key] for key in fresh}


def _truncate_lines(path: Path, handle, count: int) -> None:
    """Keep the first `count` lines of an append-mode text file (rows after the last saved
    progress are dropped, as for the images), reading line by line: 3M LSUN keys need not
    sit in memory at once."""
    handle.flush()
    offset, ends_line = 0, True
    with open(path, "rb") as text:
        for _ in range(count):
            line = text.readline()
            if not line:
                break
            offset, ends_line = offset + len(line), line.endswith(b"\n")
    os.truncate(path, offset)
    if not ends_line:
        handle.write("\n")
        handle.flush()


class PreparedImages(Dataset):
    """A prepared folder's images, memory-mapped; items are (float image in [-1, 1], 0
    records skipped), as the file sources give them."""

    def __init__(self, root: str | os.PathLike, resolution: int) -> None:
        root = Path(root)
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            if root.with_name(root.name + ".partial").exists():
                raise InputError(f"{root} is not finished: run gen data prepare again to complete it")
            raise InputError(f"{root} is not a prepared dataset (no {MANIFEST}); make one with "
                             "gen data prepare")
        manifest = json.loads(manifest_path.read_text())
        if manifest["resolution"] != resolution:
            raise InputError(f"{root} was prepared at {manifest['resolution']} px; use --resolution "
                             f"{manifest['resolution']} or prepare it again")
        self.manifest = manifest
        self.path = root / manifest["images"]
        self.shape = tuple(manifest["shape"])
        self._images: np.memmap | None = None

    @property
    def images(self) -> np.memmap:
        """The map, opened lazily in each process (a map must not be pickled to a worker)."""
        if self._images is None:
            self._images = np.memmap(self.path, dtype=np.uint8, mode="r", shape=self.shape)
        return self._images

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_images": None}

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = torch.from_numpy(np.array(self.images[index])).permute(2, 0, 1)
        return image.float() / 127.5 - 1, 0

    def uint8_nchw(self) -> torch.Tensor:
        """Every image as one uint8 N x 3 x R x R tensor (read whole from the map)."""
        return torch.from_numpy(np.array(self.images)).permute(0, 3, 1, 2)
