"""Trunk backbones of the joint-loss network behind one registry.

Each backbone is split the same way (JLML's shared low-level layers, Li et al. IJCAI 2017 Sec. 3.1):
    * ``trunk``: input -> the **stride-16** mid-level map from which the part branches RoI-align their body parts
      (Liu et al.: parts cut out of a mid-level feature map); ``mid_channels`` channels.
    * ``top``: stride-16 map -> the global branch's map (stride 16 with ``last_stride=1``, Luo et al. 2019 "Bag of
      Tricks"; stride 32 otherwise); ``top_channels`` channels.
Adding a backbone means adding one :class:`BackboneSpec` to :data:`BACKBONES`; nothing outside this module knows a
backbone by name.

Pretrained re-id trunks (``osnet-omz-0286``, ``osnet-omz-0277``): Intel's Open Model Zoo
person-reidentification-retail-0286 / -0277 (OSNet, Apache-2.0), read from their OpenVINO IR folder op by op
(``models.ir_import``): ``trunk`` is the IR up to its stride-16 tap (after conv5: 384 / 512 channels at 16x8),
``top`` the IR's own head (16x8 depthwise pooling conv, fc, affine, PReLU), which already gives the 256-D embedding
(``pooled_top``). They take BGR 0-255 pixels (the IR normalises inside), fix the input at 256x128 (the head's 16x8
kernel) and ignore ``last_stride``. Their graph is recorded in the network's config (``trunk_graph``), so a
checkpoint loads without the IR file.

ImageNet initialisation:
    * ResNets: torchvision's weights, downloaded when online (no ResNet ImageNet weights exist offline here).
    * MobileNetV2 (Sandler et al., CVPR 2018): a local ``features`` state_dict (``--imagenet PATH``, or
      ``mobilenet_v2_imagenet_features.pt`` looked up in the weights folders, also under ``imagenet/``). Its tensors
      may carry other key names (e.g. an older torchvision's); they are mapped one to one, in order, onto
      ``torchvision.models.mobilenet_v2().features`` after checking every shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from common.errors import WeightsError, setting

#: The stride of every trunk's output map (the part branches' RoI scale).
MID_STRIDE = 16
MOBILENET_V2_IMAGENET_FILE = "mobilenet_v2_imagenet_features.pt"


@dataclass
class Trunk:
    """A built backbone: ``trunk`` (to stride 16), ``top`` (global branch) and their output channels.

    Attributes:
        pooled_top: ``top`` returns an embedding ``[N, top_channels]`` itself (no pooling or projection needed).
        graph: the imported IR graph description (``models.ir_import.IRNetwork.spec``) to keep in the config, or
            None.
    """

    trunk: nn.Module
    top: nn.Module
    mid_channels: int
    top_channels: int
    pooled_top: bool = False
    graph: Optional[dict] = None


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone.

    Attributes:
        name: registry key (``JointLossConfig.backbone``).
        build: ``(last_stride, imagenet)`` -> :class:`Trunk`; ``imagenet`` is True (fetch/lookup ImageNet weights),
            False (random) or a path to a local ImageNet state_dict.
        imagenet_file: file name of the local ImageNet weights looked up in the weights folders, or None when the
            weights come from torchvision's download.
        frozen_prefix: number of leading ``trunk`` children returned by :func:`early_modules` (the stride-4 stem).
        preprocessing: the pixel convention of the input: ``imagenet_rgb`` (RGB in [0, 1], ImageNet mean/std) or
            ``bgr255`` (BGR 0-255, normalised inside the network).
        input_size: the only ``(height, width)`` the backbone takes, or None (any).
        pretrained_name: what the pretrained weights are called in messages.
        default_dims: ``(global_dim, part_dim)`` the joint-loss network uses on this backbone unless told (a
            pretrained re-id trunk keeps its own embedding size for the global branch).
    """

    name: str
    build: Callable[[int, object], Trunk]
    imagenet_file: Optional[str]
    frozen_prefix: int
    preprocessing: str = "imagenet_rgb"
    input_size: Optional[tuple[int, int]] = None
    pretrained_name: str = "ImageNet weights"
    default_dims: tuple[int, int] = (512, 128)


def _resnet(name: str, last_stride: int, imagenet) -> Trunk:
    import torchvision.models as tvm

    weights_enum = {
        "resnet18": tvm.ResNet18_Weights,
        "resnet34": tvm.ResNet34_Weights,
        "resnet50": tvm.ResNet50_Weights,
    }[name].IMAGENET1K_V1
    resnet = getattr(tvm, name)(weights=None)
    if isinstance(imagenet, (str, Path)):
        resnet.load_state_dict(_read_state_dict(Path(imagenet)), strict=False)
    elif imagenet:
        try:
            resnet = getattr(tvm, name)(weights=weights_enum)
        except Exception as exc:  # URLError, HTTPError, socket errors, corrupt cache
            raise WeightsError(
                f"the ImageNet weights of {name} could not be fetched ({type(exc).__name__}); offline, place "
                f"{weights_enum.url.rsplit('/', 1)[-1]} in $TORCH_HOME/hub/checkpoints, choose "
                f"{setting('arch')} mobilenet_v2 "
                f"(ImageNet weights from a local file), or set {setting('reid')} to a trained re-id model"
            ) from exc
    if last_stride == 1:
        block = resnet.layer4[0]
        strided = block.conv2 if hasattr(block, "conv3") else block.conv1  # Bottleneck vs BasicBlock
        strided.stride = (1, 1)
        block.downsample[0].stride = (1, 1)
    trunk = nn.Sequential(
        resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool, resnet.layer1, resnet.layer2, resnet.layer3
    )
    return Trunk(trunk, resnet.layer4, resnet.layer4[0].conv1.in_channels, resnet.fc.in_features)


def _read_state_dict(path: Path) -> dict:
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(
            f"ImageNet weights {path} could not be read ({type(exc).__name__}); the file is corrupt "
            f"or not a PyTorch state_dict"
        ) from exc
    if isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsError(f"ImageNet weights {path} are not a state_dict of tensors")
    return data


def map_state_dict_in_order(source: dict, target: dict, what: str) -> dict:
    """Rename ``source``'s tensors to ``target``'s keys one to one, in order, checking every shape.

    Args:
        source: a state_dict with other key names (same tensors in the same order).
        target: the module's own ``state_dict()``.
        what: file name for error messages.

    Returns:
        ``target``'s keys with ``source``'s tensors.

    Raises:
        WeightsError: a different number of tensors or a shape that does not match.
    """
    if len(source) != len(target):
        raise WeightsError(
            f"{what} holds {len(source)} tensors, the network expects {len(target)}: not MobileNetV2 'features' weights"
        )
    mapped = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items()):
        if tuple(tensor.shape) != tuple(expected.shape):
            raise WeightsError(
                f"{what}: tensor {src_key} has shape {tuple(tensor.shape)}, the network's {dst_key} "
                f"needs {tuple(expected.shape)}"
            )
        mapped[dst_key] = tensor.to(expected.dtype)
    return mapped


def _mobilenet_v2(last_stride: int, imagenet) -> Trunk:
    import torchvision.models as tvm

    features = tvm.mobilenet_v2(weights=None).features
    if isinstance(imagenet, (str, Path)):
        path = Path(imagenet)
        features.load_state_dict(map_state_dict_in_order(_read_state_dict(path), features.state_dict(), path.name))
    elif imagenet:
        raise WeightsError(
            f"MobileNetV2's ImageNet weights come from a local file: pass {setting('imagenet')} PATH or put "
            f"{MOBILENET_V2_IMAGENET_FILE} in a weights folder"
        )
    if last_stride == 1:
        features[14].conv[1][0].stride = (1, 1)  # the depthwise conv of the first stride-32 block
    # features[0:14] ends with the 96-channel stride-16 stage; 14: onwards is the stride-32 stage + 1x1 to 1280
    return Trunk(features[:14], features[14:], 96, 1280)


def _open_model_zoo_osnet(ir_folder: str, last_stride: int, source) -> Trunk:
    """An Open Model Zoo OSNet re-id IR as a trunk; ``source``: the IR (path), its graph description (dict, from a
    checkpoint's config) or True/False (the IR is needed: there is nothing to initialise it from otherwise)."""
    from models.ir_import import IRNetwork, import_ir

    if isinstance(source, dict):
        try:
            net = IRNetwork.from_spec(source)
        except ValueError as exc:
            raise WeightsError(f"the checkpoint's {ir_folder} graph cannot be rebuilt: {exc}") from None
    elif isinstance(source, (str, Path)):
        net = import_ir(source)
    else:
        raise WeightsError(
            f"this backbone starts from the OpenVINO IR {ir_folder}: put its folder in a weights "
            f"folder (REID_APP_WEIGHTS) or pass its path"
        )
    return Trunk(net.trunk, net.head, net.tap_channels, net.dims, pooled_top=True, graph=net.spec())


def _omz(number: str) -> BackboneSpec:
    folder = f"person-reidentification-retail-{number}"
    return BackboneSpec(
        f"osnet-omz-{number}",
        lambda s, i: _open_model_zoo_osnet(folder, s, i),
        folder,
        0,
        preprocessing="bgr255",
        input_size=(256, 128),
        pretrained_name="Open Model Zoo IR",
        default_dims=(256, 64),
    )


BACKBONES: dict[str, BackboneSpec] = {
    "resnet18": BackboneSpec("resnet18", lambda s, i: _resnet("resnet18", s, i), None, 5),
    "resnet34": BackboneSpec("resnet34", lambda s, i: _resnet("resnet34", s, i), None, 5),
    "resnet50": BackboneSpec("resnet50", lambda s, i: _resnet("resnet50", s, i), None, 5),
    "mobilenet_v2": BackboneSpec("mobilenet_v2", _mobilenet_v2, MOBILENET_V2_IMAGENET_FILE, 4),
    "osnet-omz-0286": _omz("0286"),
    "osnet-omz-0277": _omz("0277"),
}


def backbone_spec(name: str) -> BackboneSpec:
    """The registry entry for ``name``.

    Raises:
        ValueError: unknown backbone.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {tuple(BACKBONES)}")
    return BACKBONES[name]


def find_imagenet_weights(name: str, search_dirs) -> Optional[Path]:
    """The local pretrained weights of backbone ``name`` in ``search_dirs`` (each folder and its ``imagenet/``
    sub-folder): an ImageNet file, or an Open Model Zoo IR folder; None when absent (also for backbones whose
    weights torchvision downloads)."""
    file = backbone_spec(name).imagenet_file
    if file is None:
        return None
    for folder in search_dirs:
        for candidate in (Path(folder) / file, Path(folder) / "imagenet" / file):
            if candidate.exists():
                return candidate
    return None


def early_layers(trunk: nn.Module, name: str) -> tuple[list[nn.Module], list[nn.Parameter]]:
    """What ``JointLossNet.freeze_early_layers`` freezes to save its backward pass: the low-level stem that
    pretraining already trained well, as ``(modules kept in eval mode, parameters)``.

    ImageNet backbones: the first ``frozen_prefix`` children of ``trunk`` (weights and BatchNorm statistics).
    Imported IR trunks: every parameter before the last ``AvgPool`` of the trunk (OSNet's stride-8 -> 16
    transition), i.e. the stride-4 and stride-8 stages; they hold no BatchNorm."""
    from models.ir_import import IRSegment

    if isinstance(trunk, IRSegment):
        return [], trunk.parameters_before("AvgPool", -1)
    modules = list(trunk.children())[: backbone_spec(name).frozen_prefix]
    return modules, [p for module in modules for p in module.parameters()]
