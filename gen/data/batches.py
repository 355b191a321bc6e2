"""Endless, seeded, resumable streams of training batches on the training device.

Generated sets live whole on the device and are indexed with a device generator, so
drawing a batch never touches the host; file-backed sets go through DataLoader workers.
Both can save and restore their position so a resumed run sees the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from gen.data.natural import LSUN, ImageFolder
from gen.data.notsoclevr import NotSoClevr, make_shapes, make_squares

DATA_SOURCES = ("squares", "shapes", "lsun", "folder")
SHAPES_TRAIN_COUNT = 50_000


class TensorBatches:
    """Uniformly drawn batches (with replacement) from uint8 images held on the device."""

    def __init__(self, images: torch.Tensor, batch_size: int, seed: int) -> None:
        self.images = images
        self.batch_size = batch_size
        self.generator = torch.Generator(device=images.device).manual_seed(seed)

    def __iter__(self) -> TensorBatches:
        return self

    def __next__(self) -> torch.Tensor:
        rows = torch.randint(len(self.images), (self.batch_size,), generator=self.generator,
                             device=self.images.device)
        return self.images[rows].float() / 127.5 - 1

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


class LoaderBatches:
    """Epochs of a seeded permutation through a DataLoader; position = (epoch, batch)."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, workers: int,
                 device: torch.device) -> None:
        if len(dataset) < batch_size:
            raise ValueError(f"dataset has {len(dataset)} images, fewer than one batch of {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.workers = workers
        self.device = device
        self.epoch, self.batch = 0, 0
        self._iterator = None

    def _start_epoch(self) -> None:
        shuffle = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.dataset), generator=shuffle)
        order = order[self.batch * self.batch_size:].tolist()
        loader = DataLoader(self.dataset, batch_size=self.batch_size, sampler=order, drop_last=True,
                            num_workers=self.workers, pin_memory=self.device.type == "cuda",
                            persistent_workers=False)
        self._iterator = iter(loader)

    def __iter__(self) -> LoaderBatches:
        return self

    def __next__(self) -> torch.Tensor:
        if self._iterator is None:
            self._start_epoch()
        try:
            images = next(self._iterator)
        except StopIteration:
            self.epoch, self.batch = self.epoch + 1, 0
            self._start_epoch()
            images = next(self._iterator)
        self.batch += 1
        return images.to(self.device, non_blocking=True)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.batch = state["epoch"], state["batch"]
        self._iterator = None


@dataclass
class DataSpec:
    """The data a run trains on: its batches, image channels, the Not-so-Clevr set name
    used for geometric evaluation (None for natural images), and the held-out test part of
    a squares split (None when nothing is held out)."""

    batches: TensorBatches | LoaderBatches
    channels: int
    geometry: str | None
    held_out: NotSoClevr | None = None


def make_batches(source: str, *, root: str | None, split: str, resolution: int, batch_size: int,
                 seed: int, workers: int, device: torch.device) -> DataSpec:
    """Build the batch stream for a `--data` source (squares and shapes need no files)."""
    if source in ("squares", "shapes"):
        if resolution != 64:
            raise ValueError(f"{source} images are 64 x 64; use --resolution 64 (got {resolution})")
        held_out = None
        if source == "squares":
            squares = make_squares(split, seed=seed, device=device)
            images = squares.part("train").images
            if split != "all":
                held_out = squares.part("test").subset(slice(None))
                held_out = NotSoClevr(held_out.name, held_out.images.cpu(), held_out.centres.cpu(), {})
        else:
            images = make_shapes(SHAPES_TRAIN_COUNT, seed=seed, device=device).images
        return DataSpec(TensorBatches(images, batch_size, seed), images.shape[1], source, held_out)
    if source in ("lsun", "folder"):
        if root is None:
            raise ValueError(f"--data {source} needs --root")
        dataset = LSUN(root, resolution) if source == "lsun" else ImageFolder(root, resolution)
        return DataSpec(LoaderBatches(dataset, batch_size, seed, workers, device), 3, None)
    raise ValueError(f"unknown data source {source!r}; choose from {', '.join(DATA_SOURCES)}")
