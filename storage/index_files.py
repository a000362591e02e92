"""The on-disk form of a vector index: one folder per database and model, shared by every process on a machine.

Layout of a folder (``<cache>/index/<database id>/model-<id>/``):

- ``manifest.json``: what the files hold (format, database id, model, dims, dtype, rows, generation, and each
  loaded video's id and ingest time), replaced atomically after the data files are written;
- growable row files (``<name>-<generation>.bin``): raw little-endian rows, used through ``np.memmap`` so that
  opening costs no reading and the operating system pages rows in as they are touched. New rows are only ever
  appended past the rows a manifest names, so a reader holding an older manifest never sees a row change;
  removing rows writes a new generation of files instead of rewriting the old ones;
- small arrays in ``<name>-<version>.npy``;
- ``lock``: writers hold an exclusive ``flock`` while they change the folder.

Nothing here knows what the rows mean (``storage.vector_index`` does).
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

FORMAT = 1


class IndexFolder:
    """One index folder (see the module docstring).

    Args:
        path: the folder; created when missing.

    Raises:
        OSError: the folder cannot be created (callers fall back to an index in memory).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's exclusive writer lock (blocks while another process holds it)."""
        with open(self.path / "lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def read_manifest(self) -> Optional[dict]:
        """The manifest, or None when there is none or it is unreadable (the index is then rebuilt)."""
        try:
            manifest = json.loads((self.path / "manifest.json").read_text())
        except (OSError, ValueError):
            return None
        return manifest if isinstance(manifest, dict) and manifest.get("format") == FORMAT else None

    def write_manifest(self, manifest: dict) -> None:
        """Replace the manifest atomically (after the files it names are flushed)."""
        self._atomic_write("manifest.json", json.dumps({**manifest, "format": FORMAT}).encode())

    def rows(self, name: str, dtype: np.dtype, width: int, capacity: int) -> np.memmap:
        """The row file ``name`` as a writable ``[capacity, width]`` memmap of ``dtype``, grown (never shrunk) to
        ``capacity`` rows; existing rows keep their bytes."""
        path = self.path / name
        row_bytes = np.dtype(dtype).itemsize * width
        capacity = max(int(capacity), 1)
        with open(path, "a+b") as handle:
            if os.fstat(handle.fileno()).st_size < capacity * row_bytes:
                handle.truncate(capacity * row_bytes)
        return np.memmap(path, dtype=dtype, mode="r+", shape=(capacity, width))

    def save_array(self, name: str, array: np.ndarray) -> None:
        """Write a small array as ``name`` (``.npy``), atomically."""
        with tempfile.NamedTemporaryFile(dir=self.path, delete=False, suffix=".tmp") as handle:
            np.save(handle, np.ascontiguousarray(array))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, self.path / name)

    def load_array(self, name: str) -> np.ndarray:
        """A small array written by :meth:`save_array` (read into memory)."""
        return np.load(self.path / name, allow_pickle=False)

    def remove_except(self, keep: set[str]) -> None:
        """Delete data files not named in ``keep`` (older generations; a process still mapping one keeps its
        pages until it lets go)."""
        for entry in self.path.iterdir():
            if entry.name not in keep and entry.name not in ("manifest.json", "lock") \
                    and not entry.name.endswith(".tmp"):
                entry.unlink(missing_ok=True)

    def _atomic_write(self, name: str, data: bytes) -> None:
        with tempfile.NamedTemporaryFile(dir=self.path, delete=False, suffix=".tmp") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, self.path / name)


def flush(*arrays: np.ndarray) -> None:
    """Flush memmapped arrays to their files (plain arrays are skipped)."""
    for array in arrays:
        if isinstance(array, np.memmap):
            array.flush()
