"""Weights resolution: turn a weights name or path into a file the model loaders can open.

Order of search (the first hit wins):
    1. the explicit value, when it is an existing path;
    2. each folder of ``REID_APP_WEIGHTS`` / the settings file's ``weights_dir``;
    3. the user cache folder (``common.settings.user_cache_weights_dir()``).
In each folder a name ``N`` matches ``N`` itself and the usual export names of the same model: ``N.pt``,
``N.onnx``, ``N_openvino_model/``, ``N_int8_openvino_model/`` (``N`` without its suffix too).

When nothing matches, an Ultralytics model name (``yolov8n-pose.pt``, ``yolo11n.pt``...) is handed to Ultralytics,
which downloads it when the machine is online; any other name fails with a :class:`WeightsError` that lists every
place searched and how to provide the file. Nothing here downloads by itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from common.errors import WeightsError

_EXPORT_SUFFIXES = ("", ".pt", ".onnx", "_openvino_model", "_int8_openvino_model", ".pth")
_ULTRALYTICS_NAME = re.compile(r"^(yolo(v?\d+)[a-z0-9\-]*)(\.pt)?$", re.IGNORECASE)


@dataclass(frozen=True)
class ResolvedWeights:
    """Where a model's weights come from.

    Attributes:
        spec: what the user asked for (name or path).
        path: the local file or folder found, or ``None`` when the weights are to be fetched by name.
        fetch_name: the name to hand to the downloading library when ``path`` is ``None``.
        searched: every candidate location looked at, for error messages.
    """

    spec: str
    path: Optional[Path]
    fetch_name: Optional[str]
    searched: tuple[str, ...]

    def missing_message(self, kind: str, option: str, extra: str = "") -> str:
        """One-line error text: what was missing, where it looked, how to provide it."""
        where = "; ".join(self.searched) if self.searched else "nowhere (no weights folder configured)"
        hint = (
            f"pass {option} PATH, put the file in one of those folders, or set REID_APP_WEIGHTS to the folder "
            f"that holds it"
        )
        return f"{kind} weights '{self.spec}' not found (looked in: {where}){extra}; {hint}"


def _candidates(name: str) -> list[str]:
    stems = {name}
    for suffix in (".pt", ".onnx", ".pth"):
        if name.endswith(suffix):
            stems.add(name[: -len(suffix)])
    out: list[str] = []
    for stem in sorted(stems, key=len, reverse=True):
        for suffix in _EXPORT_SUFFIXES:
            cand = stem + suffix
            if cand not in out:
                out.append(cand)
    return out


def is_ultralytics_name(spec: str) -> bool:
    """True when ``spec`` looks like an Ultralytics hub model name such as ``yolov8n-pose.pt``."""
    return bool(_ULTRALYTICS_NAME.match(spec)) and "/" not in spec


def resolve_weights(spec: str, search_dirs: Iterable[Path], allow_fetch_name: bool = False) -> ResolvedWeights:
    """Find the weights named by ``spec``.

    Args:
        spec: a path (absolute, relative, ``~``) or a bare model name.
        search_dirs: folders to search in order (see module docstring).
        allow_fetch_name: when True and nothing is found, an Ultralytics model name is returned as ``fetch_name``
            (with a ``.pt`` suffix) instead of failing.

    Returns:
        ResolvedWeights with ``path`` set, or ``fetch_name`` set when allowed.

    Raises:
        WeightsError: ``spec`` names a path that does not exist or is a special file (FIFO, device), or a name
            found nowhere.
    """
    searched: list[str] = []
    path = Path(spec).expanduser()
    looks_like_path = path.is_absolute() or "/" in spec or spec.startswith(".") or spec.startswith("~")
    if path.exists():
        if not (path.is_file() or path.is_dir()):
            raise WeightsError(
                f"weights '{spec}' is not a regular file (a FIFO, device or socket); give a model file or folder"
            )
        return ResolvedWeights(spec, path.resolve(), None, (str(path),))
    searched.append(str(path))
    if looks_like_path:
        raise WeightsError(f"weights file '{spec}' does not exist; check the path")
    for folder in search_dirs:
        for cand in _candidates(spec):
            candidate = Path(folder) / cand
            if candidate.exists():
                return ResolvedWeights(spec, candidate.resolve(), None, tuple(searched))
        searched.append(str(folder))
    if allow_fetch_name and is_ultralytics_name(spec):
        fetch = spec if spec.lower().endswith(".pt") else spec + ".pt"
        return ResolvedWeights(spec, None, fetch, tuple(searched))
    return ResolvedWeights(spec, None, None, tuple(searched))
