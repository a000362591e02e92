"""Finding an OpenVINO IR on disk (no torch, no OpenVINO import): used by the encoders that run an IR and by the
importer that turns one into a torch trunk."""

from __future__ import annotations

from pathlib import Path
from typing import Optional


def openvino_xml(path: str | Path) -> Optional[Path]:
    """The ``.xml`` of an OpenVINO IR given as the file itself or its folder (one ``.xml`` in it), else None."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".xml":
        return path
    if path.is_dir():
        xmls = sorted(path.glob("*.xml"))
        if len(xmls) == 1 and not (path / "metadata.yaml").exists():  # metadata.yaml: an ultralytics export
            return xmls[0]
    return None
