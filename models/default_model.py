"""The re-id model shipped inside the package: what ingest, search, evaluate, export and the app use when no
``--reid`` is given.

Two files of one trained network, both produced from one ``reid-app train`` checkpoint by ``scripts/ship_model.py``
(recipe, data and metrics in README.md, "Model card"):

* ``models/pretrained/<DEFAULT_MODEL_NAME>.xml`` + ``.bin``: the network exported to an OpenVINO IR with FP16 weights
  (``models.ir_export``), which inference uses (``models.encoders.OpenVinoEncoder``; its name, preprocessing,
  clustering threshold and descriptor layout are in the IR's ``rt_info``);
* ``models/pretrained/<DEFAULT_MODEL_NAME>.pt``: the same weights as a reid-app checkpoint (float16, no classifiers,
  with the imported trunk's graph in its config), for ``reid-app train --resume``, site adaptation and ONNX export.

Both are found through ``importlib.resources``, so they work from an installed wheel as well as from a source
checkout; nothing is downloaded.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from common.errors import WeightsError, setting

DEFAULT_MODEL_NAME = "jointloss-osnet0286-cuhk"


def _shipped(suffix: str) -> Path:
    path = Path(str(resources.files("models").joinpath("pretrained", DEFAULT_MODEL_NAME + suffix)))
    if not path.is_file():
        raise WeightsError(
            f"the shipped re-id model {path} is missing from this installation; reinstall reid-app or set "
            f"{setting('reid')} to a re-id model file"
        )
    return path


def default_model_ir() -> Path:
    """The ``.xml`` of the shipped OpenVINO IR (its ``.bin`` beside it).

    Raises:
        WeightsError: the package was installed without it (a broken install).
    """
    _shipped(".bin")
    return _shipped(".xml")


def default_checkpoint() -> Path:
    """Path of the shipped reid-app checkpoint (the trainable PyTorch weights of the same network).

    Raises:
        WeightsError: the package was installed without it (a broken install).
    """
    return _shipped(".pt")
