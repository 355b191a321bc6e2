"""LSUN at scale: opening the lmdb, decoding it, and training from it against a prepared set.

Builds an LSUN-layout lmdb (40-hex keys, JPEG values of short side 256, as released) of
`--records` records, once, at `--db` (kept for later runs), then measures with the page
cache emptied for the database before each opening (posix_fadvise DONTNEED, no root needed):
1. opening: a key-only cursor scan; `LSUN(root)` with no key index cached (the scan plus
   writing the index); `LSUN(root)` again (index cached); and a walk of keys and values,
   which is what opening cost before the key index;
2. decoding: images/s of `LSUN` decoding in one process, of `gen data prepare` with
   `--workers` processes, and of reading the prepared set;
3. training: GAN steps/s (DCGAN at `--width`, batch 64) fed by a DataLoader decoding the
   lmdb with `--workers` workers, by the prepared set memory-mapped, and by the prepared
   set held in memory, alternating; and the time per 1M images of each;
4. the LSUN experiment's models at `--width` (conv and CoordConv GAN and VAE, batch 64, fed
   from the prepared set in memory): steps/s and hours per 1M images.

Usage: python benchmarks/bench_lsun.py [--records 60000] [--db /tmp/lsun-bench]
       [--workers 2] [--threads 2] [--width 16] [--steps 20] [--parts opening,decoding,training]
(training and the models read the prepared set that decoding writes.)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lmdb
import numpy as np
import torch
from PIL import Image
from timing import alternating_medians, timing_device

from gen.data.batches import LoaderBatches, TensorBatches
from gen.data.natural import LSUN, open_lmdb
from gen.data.prepare import PreparedImages, prepare
from gen.families import build_task
from gen.gan.config import DiscriminatorConfig, GANConfig, GeneratorConfig, gan_preset
from gen.gan.task import GANTask
from gen.vae.config import vae_preset


def photo_like(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random colour field with some texture: JPEG sizes and decode times of the
    order of real photos (about 20 KB at 256 x 341), unlike flat or pure-noise images."""
    coarse = rng.integers(0, 256, size=(height // 32 + 2, width // 32 + 2, 3), dtype=np.uint8)
    field = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), dtype=np.int16)
    texture = rng.integers(-12, 13, size=(height, width, 3), dtype=np.int16)
    return np.clip(field + texture, 0, 255).astype(np.uint8)


def build_lmdb(path: Path, records: int, seed: int = 0) -> None:
    """An LSUN-layout lmdb: keys 40-hex ids, values JPEGs with short side 256."""
    if (path / "data.mdb").is_file():
        with lmdb.open(str(path), readonly=True, lock=False) as env:
            if env.stat()["entries"] == records:
                return
        shutil.rmtree(path)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    with lmdb.open(str(path), map_size=1 << 40) as env:
        for first in range(0, records, 1000):
            with env.begin(write=True) as txn:
                for index in range(first, min(first + 1000, records)):
                    long_side = int(rng.integers(256, 400))
                    height, width = (256, long_side) if index % 3 else (long_side, 256)
                    buffer = io.BytesIO()
                    Image.fromarray(photo_like(rng, height, width)).save(buffer, format="JPEG", quality=75)
                    txn.put(hashlib.sha1(f"{seed}-{index}".encode()).hexdigest().encode(), buffer.getvalue())
    size = (path / "data.mdb").stat().st_size
    print(f"built {path}: {records} records, {size / 1e9:.2f} GB in {time.perf_counter() - started:.0f} s")


def evict(path: Path) -> None:
    """Drop a file's pages from the page cache, so the next read comes from the disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)


def timed(function) -> tuple[float, object]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def scan(path: Path, values: bool) -> int:
    with open_lmdb(path).begin() as txn:
        if values:
            return sum(len(value) for _, value in txn.cursor())
        return sum(1 for _ in txn.cursor().iternext(keys=True, values=False))


OPENINGS = {
    "key-only cursor scan": lambda db: scan(db, values=False),
    "LSUN(root), no index cached": lambda db: LSUN(db, 64),
    "LSUN(root), index cached": lambda db: LSUN(db, 64),
    "keys and values walk (before the index)": lambda db: scan(db, values=True),
}


def open_once(name: str, db: Path) -> None:
    """In a fresh process (no mapping of the database alive, so eviction works): empty the
    page cache of the database, time one way of opening it, print the seconds."""
    evict(db / "data.mdb")
    print(timed(lambda: OPENINGS[name](db))[0])


def opening(db: Path) -> None:
    results = {}
    with tempfile.TemporaryDirectory() as cache:  # the key index of this run only
        for name in OPENINGS:
            command = [sys.executable, __file__, "--open-once", name, "--db", str(db)]
            done = subprocess.run(command, capture_output=True, text=True, check=True,
                                  env={**os.environ, "GEN_CACHE_DIR": cache})
            results[name] = float(done.stdout.split()[-1])
    base = results["key-only cursor scan"]
    print("\n| opening (cold page cache, fresh process) | seconds | x key-only scan |\n|---|---:|---:|")
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.2f} | {seconds / base:.2f} |")


def decoding(db: Path, prepared: Path, workers: int, count: int) -> None:
    lsun = LSUN(db, 64)
    indices = range(count)
    raw = timed(lambda: [lsun[i] for i in indices])[0]
    if prepared.exists():
        shutil.rmtree(prepared)
    prep = timed(lambda: prepare("lsun", db, 64, prepared, workers, limit=count))[0]
    images = PreparedImages(prepared, 64)
    read = timed(lambda: [images[i] for i in indices])[0]
    print(f"\n| decoding {count} records at 64 px | images/s |\n|---|---:|")
    print(f"| LSUN decode, one process | {count / raw:.0f} |")
    print(f"| gen data prepare, {workers} workers | {count / prep:.0f} |")
    print(f"| prepared set read (memory map) | {count / read:.0f} |")


def training(db: Path, prepared: Path, workers: int, width: int, steps: int, repeats: int) -> None:
    config = GANConfig(generator=GeneratorConfig(width=width), discriminator=DiscriminatorConfig(width=width))
    device = torch.device("cpu")
    task = GANTask(config.for_data(3, 64), device)
    held = PreparedImages(prepared, 64).uint8_nchw()
    sources = {
        f"LSUN lmdb, DataLoader decoding ({workers} workers)":
            LoaderBatches(LSUN(db, 64), 64, 0, workers, device),
        f"prepared, memory-mapped (DataLoader, {workers} workers)":
            LoaderBatches(PreparedImages(prepared, 64), 64, 0, workers, device),
        "prepared, held in memory": TensorBatches(held, 64, 0),
    }
    counter = iter(range(10**9))
    fed = {name: (lambda batches=batches: task.train_step(next(batches), next(counter)))
           for name, batches in sources.items()}
    seconds = alternating_medians(fed, steps, repeats, warmup=3)
    base = seconds["prepared, held in memory"]
    print(f"\n| GAN training at width {width}, batch 64, 64 px | steps/s | x held | hours per 1M images |")
    print("|---|---:|---:|---:|")
    for name, value in seconds.items():
        print(f"| {name} | {1 / value:.2f} | {base / value:.2f} | {value * 1e6 / 64 / 3600:.2f} |")


def experiment_models(width: int) -> dict[str, object]:
    """The README's LSUN commands' models (`gen train gan|vae [--coordconv --arch dcgan]`) at a width."""
    sizes = {"generator": {"width": width}, "discriminator": {"width": width}}
    return {
        "GAN, conv": gan_preset(arch="dcgan", **sizes).model,
        "GAN, CoordConv (--coordconv --arch dcgan)": gan_preset(coordconv=True, arch="dcgan", **sizes).model,
        "VAE, conv": vae_preset(data="prepared", model={"width": width}).model,
        "VAE, CoordConv": vae_preset(coordconv=True, data="prepared", model={"width": width}).model,
    }


def models(prepared: Path, width: int, steps: int, repeats: int) -> None:
    device = torch.device("cpu")
    held = PreparedImages(prepared, 64).uint8_nchw()
    tasks = {name: build_task(model.for_data(3, 64), device)
             for name, model in experiment_models(width).items()}
    batches = TensorBatches(held, 64, 0)
    counter = iter(range(10**9))
    seconds = alternating_medians({name: (lambda task=task: task.train_step(next(batches), next(counter)))
                                   for name, task in tasks.items()}, steps, repeats, warmup=3)
    print(f"\n| LSUN experiment model, width {width}, batch 64, 64 px | steps/s | hours per 1M images |")
    print("|---|---:|---:|")
    for name, value in seconds.items():
        print(f"| {name} | {1 / value:.2f} | {value * 1e6 / 64 / 3600:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--db", type=Path, default=Path(tempfile.gettempdir()) / "lsun-bench")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--decode", type=int, default=2000, help="records decoded and prepared")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parts", default="opening,decoding,training",
                        help="comma-separated parts to run (training includes the models)")
    parser.add_argument("--open-once", choices=list(OPENINGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.open_once:
        open_once(args.open_once, args.db)
        return
    timing_device("cpu", args.threads)
    build_lmdb(args.db, args.records)
    print(f"{args.records} records, {args.threads} threads, {args.workers} workers")
    parts = set(args.parts.split(","))
    if "opening" in parts:
        opening(args.db)
    prepared = args.db.with_name(args.db.name + "-prepared")
    if "decoding" in parts:
        decoding(args.db, prepared, args.workers, min(args.decode, args.records))
    if "training" in parts:
        training(args.db, prepared, args.workers, args.width, args.steps, args.repeats)
        models(prepared, args.width, args.steps, args.repeats)


if __name__ == "__main__":
    main()
