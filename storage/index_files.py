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

The folder is a cache and is never trusted blindly: the manifest records, for every file it names, the bytes in
use and a CRC-32 per 4 MiB block of them (the whole file for ``.npy`` arrays), and a reader checks them before it
adopts the files (:class:`DamagedIndexError` otherwise; the caller rebuilds from the database). Row files are grown
with ``posix_fallocate``, so a full disk is an ``OSError`` when the room is asked for, never a ``SIGBUS`` when a
mapped page is first written.

Nothing here knows what the rows mean (``storage.vector_index`` does).
"""

from __future__ import annotations

import errno
import io
import json
import os
import tempfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
from filelock import FileLock

FORMAT = 2
#: Bytes covered by one CRC-32 of a row file's checks.
BLOCK_BYTES = 1 << 22


class DamagedIndexError(Exception):
    """A file of an index folder is missing, short or does not match the checks its manifest records."""


def block_checksums(rows: np.ndarray, known: Optional[dict] = None) -> dict:
    """The checks of the rows in use of a row file: ``{"bytes": n, "crc": [CRC-32 of each BLOCK_BYTES block]}``.

    Args:
        rows: the ``[n, width]`` rows in use (C-contiguous).
        known: earlier checks of a prefix of the same rows (rows are only appended): its whole blocks are reused
            instead of read again.
    """
    raw = np.ascontiguousarray(rows).reshape(-1).view(np.uint8)
    reuse = []
    if known and int(known.get("bytes", 0)) <= len(raw):
        reuse = list(known.get("crc", []))[: int(known["bytes"]) // BLOCK_BYTES]
    crcs = reuse + [
        zlib.crc32(raw[start : start + BLOCK_BYTES]) for start in range(len(reuse) * BLOCK_BYTES, len(raw), BLOCK_BYTES)
    ]
    return {"bytes": int(len(raw)), "crc": crcs}


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
        """Hold the folder's exclusive writer lock (blocks while another process holds it; ``filelock``: an OS lock
        on Linux, macOS and Windows, released when the process dies)."""
        with FileLock(self.path / "lock"):
            yield

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
        ``capacity`` rows; existing rows keep their bytes.

        Raises:
            OSError: the room cannot be allocated (``ENOSPC``: the disk is full) or the file cannot be written.
        """
        path = self.path / name
        row_bytes = np.dtype(dtype).itemsize * width
        capacity = max(int(capacity), 1)
        with open(path, "a+b") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size < capacity * row_bytes:
                allocate = getattr(os, "posix_fallocate", None)  # Linux; macOS and Windows have none
                try:
                    if allocate is None:
                        raise OSError(errno.EOPNOTSUPP, "no posix_fallocate on this system")
                    allocate(handle.fileno(), size, capacity * row_bytes - size)
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                        raise
                    handle.truncate(capacity * row_bytes)  # a file system or system without fallocate
        return np.memmap(path, dtype=dtype, mode="r+", shape=(capacity, width))

    def existing_rows(self, name: str, dtype: np.dtype, width: int, capacity: int) -> np.memmap:
        """The row file ``name`` that a manifest names, mapped as ``[capacity, width]``, refusing one that is
        missing or shorter than that (never grown: a missing row file must not become zeros).

        Raises:
            DamagedIndexError: the file is missing, not a file, or short.
        """
        path = self.path / name
        row_bytes = np.dtype(dtype).itemsize * width
        capacity = max(int(capacity), 1)
        try:
            size = path.stat().st_size
        except OSError:
            raise DamagedIndexError(f"{name} is missing") from None
        if size < capacity * row_bytes:
            raise DamagedIndexError(f"{name} holds {size} bytes, its manifest {capacity * row_bytes}")
        try:
            return np.memmap(path, dtype=dtype, mode="r+", shape=(capacity, width))
        except (OSError, ValueError) as exc:
            raise DamagedIndexError(f"{name} cannot be mapped ({exc})") from None

    def save_array(self, name: str, array: np.ndarray) -> int:
        """Write a small array as ``name`` (``.npy``), atomically; returns the CRC-32 of the file's bytes."""
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array))
        self._atomic_write(name, buffer.getvalue())
        return zlib.crc32(buffer.getvalue())

    def load_array(self, name: str, crc: Optional[int] = None) -> np.ndarray:
        """A small array written by :meth:`save_array` (read into memory), checked against ``crc`` when given.

        Raises:
            DamagedIndexError: the file is missing, unreadable, not an array, or its bytes do not match ``crc``.
        """
        try:
            data = (self.path / name).read_bytes()
        except OSError:
            raise DamagedIndexError(f"{name} is missing or unreadable") from None
        if crc is not None and zlib.crc32(data) != int(crc):
            raise DamagedIndexError(f"{name} does not match its checksum")
        try:
            return np.load(io.BytesIO(data), allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DamagedIndexError(f"{name} is not an array ({exc})") from None

    def file_identity(self, name: str) -> Optional[tuple[int, int]]:
        """``(inode, size in bytes)`` of a file of the folder, or None when it is gone."""
        try:
            st = (self.path / name).stat()
        except OSError:
            return None
        return st.st_ino, st.st_size

    def remove_except(self, keep: set[str]) -> None:
        """Delete data files not named in ``keep`` (older generations; a process still mapping one keeps its
        pages until it lets go)."""
        for entry in self.path.iterdir():
            if (
                entry.name not in keep
                and entry.name not in ("manifest.json", "lock")
                and not entry.name.endswith(".tmp")
            ):
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
