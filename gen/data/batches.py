"""Endless, seeded, resumable streams of training batches on the training device.

Generated sets live whole on the device and are indexed with a device generator, so
drawing a batch never touches the host; file-backed sets go through DataLoader workers.
Both can save and restore their position so a resumed run sees the same batches.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from gen.configs import DATA_SOURCES, GENERATED_SOURCES, RunConfig
from gen.data.notsoclevr import NotSoClevr, make_shapes, make_squares
from gen.data.prepare import PreparedImages, open_source
from gen.devices import restore_generator
from gen.distributed import SINGLE, World
from gen.errors import InputError
from gen.images import to_model_range

SHAPES_TRAIN_COUNT = 50_000


class TensorBatches:
    """Uniformly drawn batches (with replacement) from uint8 images held on the device;
    under several ranks each draws the global batch's rows and keeps its slice."""

    def __init__(self, images: torch.Tensor, batch_size: int, seed: int, world: World = SINGLE) -> None:
        self.images = images
        self.batch_size = batch_size
        self.world = world
        self.generator = torch.Generator(device=images.device).manual_seed(seed)

    def __iter__(self) -> TensorBatches:
        return self

    def __next__(self) -> torch.Tensor:
        rows = torch.randint(len(self.images), (self.batch_size,), generator=self.generator,
                             device=self.images.device)
        return to_model_range(self.images[self.world.mine(rows)])

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        restore_generator(self.generator, state["generator"])


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def leave_stops_to_the_main_process(worker_id: int) -> None:
    """DataLoader workers ignore SIGINT and SIGTERM: a scheduler or torchrun signals the whole
    process group, and a worker killed by it would break the main process's orderly stop.
    Workers start with both blocked (`starting_workers`), so one that arrives before this
    runs is discarded here rather than killing the worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextlib.contextmanager
def starting_workers() -> Iterator[None]:
    """Block SIGINT and SIGTERM while DataLoader workers fork: they inherit the mask, so a
    group signal in the moment between a worker's start and its init function waits for the
    init to ignore it. The main process receives its own copy once unblocked."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class LoaderBatches:
    """Epochs of a seeded permutation through a DataLoader; position = (epoch, batch). Under
    several ranks each reads its disjoint slice of every global batch of the permutation."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, workers: int,
                 device: torch.device, world: World = SINGLE) -> None:
        if len(dataset) < batch_size:
            raise InputError(f"dataset has {len(dataset)} images, fewer than one batch of {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.world = world
        self.seed = seed
        self.workers = workers
        self.device = device
        self.epoch, self.batch = 0, 0
        self.skipped = 0  # unreadable records passed over, over the whole run
        self._iterator = None

    def _start_epoch(self) -> None:
        shuffle = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.dataset), generator=shuffle)
        order = order[self.batch * self.batch_size:]
        whole_batches = order[:len(order) // self.batch_size * self.batch_size].view(-1, self.batch_size)
        order = self.world.mine(whole_batches.T).T.reshape(-1).tolist()
        local = self.batch_size // self.world.size
        loader = DataLoader(self.dataset, batch_size=local, sampler=order, drop_last=True,
                            num_workers=self.workers, pin_memory=self.device.type == "cuda",
                            persistent_workers=False, worker_init_fn=leave_stops_to_the_main_process)
        with starting_workers():
            self._iterator = iter(loader)

    def __iter__(self) -> LoaderBatches:
        return self

    def __next__(self) -> torch.Tensor:
        if self._iterator is None:
            self._start_epoch()
        try:
            images, skipped = next(self._iterator)
        except StopIteration:
            self.epoch, self.batch = self.epoch + 1, 0
            self._start_epoch()
            images, skipped = next(self._iterator)
        self.batch += 1
        self.skipped += int(skipped.sum())
        return images.to(self.device, non_blocking=True)

    def counters(self) -> dict[str, float]:
        return {"data/skipped_records": self.skipped}

    def state_dict(self) -> dict:
        """The position, and the skip count summed over ranks (every rank calls this)."""
        skipped = self.world.total({"skipped": self.skipped})["skipped"]
        return {"epoch": self.epoch, "batch": self.batch, "skipped": int(skipped)}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.batch = state["epoch"], state["batch"]
        # rank 0 carries the run's count on; checkpoints from before the count have none
        self.skipped = state.get("skipped", 0) if self.world.is_main else 0
        self._iterator = None


@dataclass
class RunDataset:
    """A run's data, built one way wherever it is needed (training, evaluation,
    interpolation endpoints): a generated Not-so-Clevr set whole, with its split's test
    mask, a prepared set held whole on the device (uint8), or a file-backed torch Dataset
    of natural images."""

    source: str
    channels: int
    generated: NotSoClevr | None = None
    files: Dataset | None = None
    held: torch.Tensor | None = None

    @property
    def geometry(self) -> str | None:
        """The Not-so-Clevr set to measure samples against (None for natural images)."""
        return None if self.generated is None else self.generated.name

    def train_images(self) -> torch.Tensor:
        """uint8 N x C x H x W of the generated set's training rows."""
        if self.generated is None:
            raise ValueError(f"--data {self.source} is not a generated set: its images are read from files")
        return self.generated.part("train").images

    def held_out(self) -> NotSoClevr | None:
        """The test rows of a split, on the CPU, or None when nothing is held out."""
        if self.generated is None or "test" not in self.generated.labels:
            return None
        test = self.generated.part("test")
        if len(test) == 0:
            return None
        return NotSoClevr(test.name, test.images.cpu(), test.centres.cpu(), {})

    def batches(self, batch_size: int, seed: int, workers: int, device: torch.device,
                world: World = SINGLE) -> TensorBatches | LoaderBatches:
        """The endless, seeded, resumable stream of training batches on `device`: this
        rank's slice of each global batch of `batch_size`."""
        world.local_batch(batch_size)
        if self.files is not None:
            return LoaderBatches(self.files, batch_size, seed, workers, device, world)
        images = self.held if self.held is not None else self.train_images()
        return TensorBatches(images.to(device), batch_size, seed, world)


def fits_on(device: torch.device | str | None, size: int) -> bool:
    """Whether `size` bytes of images can live on the device: half its free memory on a GPU,
    a quarter of the machine's memory on the CPU (the rest is the model's and the OS's)."""
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        return size <= torch.cuda.mem_get_info(device)[0] // 2
    return size <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4


def run_dataset(run: RunConfig, device: torch.device | str | None = None) -> RunDataset:
    """The data of a run: squares and shapes are generated (on `device`; the run's seed
    seeds the shapes set and the uniform split's test mask), lsun, folder and prepared read
    its root; a prepared set that fits the device is held there whole."""
    source, root, resolution = run.data, run.root, run.resolution
    if source in GENERATED_SOURCES:
        if resolution != 64:
            raise InputError(f"{source} images are 64 x 64; use --resolution 64 (got {resolution})")
        if source == "squares":
            generated = make_squares(run.split, seed=run.seed, device=device)
        else:
            generated = make_shapes(SHAPES_TRAIN_COUNT, seed=run.seed, device=device)
        return RunDataset(source, generated.images.shape[1], generated=generated)
    if source in ("lsun", "folder"):
        if root is None:
            raise InputError(f"--data {source} needs --root")
        files = open_source(source, root, resolution)
        files.check_readable()
        return RunDataset(source, 3, files=files)
    if source == "prepared":
        if root is None:
            raise InputError("--data prepared needs --root (a folder made by gen data prepare)")
        prepared = PreparedImages(root, resolution)
        if fits_on(device, prepared.images.nbytes):
            return RunDataset(source, 3, held=prepared.uint8_nchw())
        return RunDataset(source, 3, files=prepared)
    raise InputError(f"unknown data source {source!r}; choose from {', '.join(DATA_SOURCES)}")
