"""reid-app checkpoint format: a ``state_dict`` plus plain metadata, never a pickled module.

File contents (``torch.save`` of a dict of tensors and plain Python values, loaded with ``weights_only=True``)::

    {"format": "reid-app-checkpoint", "version": 1,
     "state_dict": {...},
     "metadata": {"architecture": "jointloss", "config": {...JointLossConfig...},
                  "input_size": [256, 128], "dims": 1024, "training_data": "...", ...}}
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from common.errors import WeightsError

FORMAT = "reid-app-checkpoint"
VERSION = 1


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (for a folder: of its files' names and bytes, sorted)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            digest.update(str(f.relative_to(path)).encode())
        with f.open("rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    path: str | Path, state_dict: dict, metadata: dict[str, Any], training_state: dict | None = None
) -> None:
    """Write a checkpoint atomically (temporary file, then rename).

    Args:
        path: destination file.
        state_dict: the model's ``state_dict()``.
        metadata: plain values only (str, int, float, bool, list, dict); must include ``architecture`` and
            ``config``.
        training_state: what ``--resume`` needs beyond the weights (the optimizer's ``state_dict()``: tensors and
            plain values); left out of final checkpoints.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    data = {"format": FORMAT, "version": VERSION, "state_dict": state_dict, "metadata": metadata}
    if training_state is not None:
        data["training_state"] = training_state
    torch.save(data, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path, with_training_state: bool = False) -> tuple:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns:
        ``(state_dict, metadata)``, or ``(state_dict, metadata, training_state or None)`` with
        ``with_training_state``.

    Raises:
        WeightsError: unreadable or corrupt file, or not a reid-app checkpoint.
    """
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(
            f"re-id checkpoint {path} could not be read ({type(exc).__name__}); the file is "
            f"corrupt or not a PyTorch checkpoint"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise WeightsError(
            f"{path} is not a reid-app checkpoint (no '{FORMAT}' header); use 'reid-app train' "
            f"checkpoints or an ONNX re-id model"
        )
    if data.get("version", 0) > VERSION:
        raise WeightsError(
            f"re-id checkpoint {path} has format version {data['version']}, newer than this "
            f"reid-app supports ({VERSION}); upgrade reid-app"
        )
    if with_training_state:
        return data["state_dict"], data.get("metadata", {}), data.get("training_state")
    return data["state_dict"], data.get("metadata", {})
