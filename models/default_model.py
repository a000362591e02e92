"""The re-id model shipped inside the package: what ingest, search, evaluate, export and the app use when no
``--reid`` is given.

The checkpoint is ``models/pretrained/<DEFAULT_MODEL_FILE>``, produced by ``reid-app train`` (recipe, data and
metrics in README.md, "Model card") and stored in float16 (``reid-app train`` writes float32; the shipped copy is
converted by ``scripts/ship_model.py``). It is found through ``importlib.resources``, so it works from an installed
wheel as well as from a source checkout; nothing is downloaded.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from reid_app.errors import WeightsError

DEFAULT_MODEL_FILE = "jointloss-mobilenet_v2-cuhk.pt"


def default_checkpoint() -> Path:
    """Path of the shipped checkpoint.

    Raises:
        WeightsError: the package was installed without it (a broken install).
    """
    path = Path(str(resources.files("models").joinpath("pretrained", DEFAULT_MODEL_FILE)))
    if not path.is_file():
        raise WeightsError(f"the shipped re-id model {path} is missing from this installation; reinstall reid-app "
                           f"or pass --reid PATH")
    return path
