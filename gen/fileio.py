"""Atomic, durable file output: a crash, a kill -9 or a bad input never leaves a half-written
file behind."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from gen.errors import InputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The temporary name keeps the suffix, so writers that pick a format from it still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def fsync_path(path: Path) -> None:
    """Flush a file's or a directory's entries to disk, so that a rename is durable: after a
    power loss or kill -9 the path holds the old file or the whole new one."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)


def save_json(path: str | os.PathLike, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_torch(path: str | os.PathLike, obj) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_torch(path: str | os.PathLike, map_location="cpu"):
    """Load a checkpoint as data only: weights_only refuses pickled code."""
    return torch.load(path, map_location=map_location, weights_only=True)


def load_torch_data(path: str | os.PathLike, what: str):
    """A torch file a user hands us, loaded as data only; InputError naming `what` it should
    be when it is unreadable, and naming the code it carries when it holds pickled code."""
    try:
        return load_torch(path)
    except pickle.UnpicklingError as error:
        code = re.search(r"GLOBAL ([\w.]+)", str(error))  # what torch's weights-only unpickler refused
        if code is None:
            raise InputError(f"{path} is not a readable {what} (UnpicklingError)") from None
        raise InputError(f"{path} holds pickled code or objects, not plain data ({code.group(1)}): "
                         f"refused without running it ({what}s are loaded as data only)") from None
    except Exception as error:  # torch raises many types for foreign or corrupt files
        raise InputError(f"{path} is not a readable {what} ({type(error).__name__})") from None


def file_identity(path: str | os.PathLike) -> str:
    """A file's resolved path, size and modification time: what caches of data derived from
    it are keyed by, so that a changed file is derived again."""
    stat = os.stat(path)
    return f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def cache_dir(name: str) -> Path:
    """A folder for derived data worth keeping between runs (key indexes, reference
    features): $GEN_CACHE_DIR/<name>, else the user's cache folder, never beside a dataset,
    which may be read-only."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "coordgen"
    return Path(os.environ.get("GEN_CACHE_DIR", default)) / name


def cached_arrays(folder: str, identity: str,
                  compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Arrays derived from data that `identity` names (it must change when the data does),
    kept as a plain .npz (no pickle) in cache_dir(folder): read back when present and whole,
    else computed and stored. A damaged entry is recomputed; an unwritable cache only costs
    the computation."""
    path = cache_dir(folder) / f"{hashlib.sha256(identity.encode()).hexdigest()[:32]}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as cached:
                if str(cached["identity"]) == identity:
                    return {name: cached[name] for name in cached.files if name != "identity"}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass
    arrays = compute()
    try:
        save_npz(path, identity=np.array(identity), **arrays)
    except OSError:
        pass
    return arrays
