"""An OpenVINO IR re-id model read op by op and rebuilt as a trainable PyTorch module.

Intel's Open Model Zoo person re-id models (person-reidentification-retail-0277/0286/0288, Apache-2.0) are
OSNet-style networks (Zhou et al., "Omni-Scale Feature Learning for Person Re-Identification", ICCV 2019) whose IR
graphs use a small set of ops: Convolution, GroupConvolution, MVN (instance normalisation, also inside the LCT
channel gates), Sigmoid gates, ReduceMean, Add/Multiply, pooling, one MatMul head, and shape arithmetic
(ShapeOf/Gather/Concat/Reshape). :func:`import_ir` walks the graph in topological order and turns it into
:class:`IRNetwork`: the same computation in torch, with every float constant a float32 ``nn.Parameter`` except the
constants of the input preprocessing (the BGR->RGB ``Gather`` and the mean/std arithmetic before the first network
layer), which become frozen buffers. Weights a graph uses in several places (OSNet's shared channel gates) stay one
parameter.

The network is split at a **stride-16 tap** (``IRNetwork.trunk``: input -> tap map; ``IRNetwork.head``: tap map ->
embedding), so the joint-loss network's part branches can RoI-align body parts from the tap while the global branch
keeps the model's own head. By default the tap is the last op whose output is the input size / 16 (for 0286 the
``[N, 384, 16, 8]`` map after conv5).

Every shape the graph computes is resolved in Python and the batch axis written as ``-1``, so a traced module
(``torch.jit.trace``, OpenVINO's PyTorch frontend in ``models.ir_export``) keeps a dynamic batch.

Errors: an op outside :data:`SUPPORTED_OPS`, or a graph that cannot be cut at the tap, raises
:class:`UnsupportedIRError` naming the op.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.errors import WeightsError
from models.ir_files import openvino_xml

#: Op types :func:`import_ir` understands.
SUPPORTED_OPS = frozenset(
    {
        "Parameter",
        "Constant",
        "Convert",
        "Result",
        "Convolution",
        "GroupConvolution",
        "MatMul",
        "Add",
        "Subtract",
        "Multiply",
        "Divide",
        "MVN",
        "Relu",
        "Sigmoid",
        "PRelu",
        "MaxPool",
        "AvgPool",
        "ReduceMean",
        "Reshape",
        "ShapeOf",
        "Gather",
        "Concat",
        "Squeeze",
        "Unsqueeze",
    }
)
#: Ops that may form the input preprocessing before the first network layer (their constants are frozen).
_PREPROCESSING_OPS = frozenset({"Gather", "Subtract", "Multiply", "Divide", "Add", "Convert"})
_ELEMENTWISE = {"Add": torch.add, "Subtract": torch.sub, "Multiply": torch.mul, "Divide": torch.div}


class UnsupportedIRError(WeightsError):
    """The IR holds an op (or an op setting) this importer cannot rebuild; the message names it."""


@dataclass
class _Step:
    """One op of a segment: its type, friendly name, inputs (``("value", key)``, ``("param", name)`` or
    ``("const", python value)``), outputs' keys and attributes."""

    kind: str
    name: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)


def _safe(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


def _pads(step: _Step) -> tuple[int, int]:
    begin, end = list(step.attrs.get("pads_begin", [0, 0])), list(step.attrs.get("pads_end", [0, 0]))
    auto = str(step.attrs.get("auto_pad", "explicit")).lower()
    if auto not in ("explicit", "notset", "valid") or begin != end:
        raise UnsupportedIRError(
            f"{step.kind} '{step.name}' pads {begin}/{end} with auto_pad {auto!r}: only "
            f"symmetric explicit padding is supported"
        )
    return (0, 0) if auto == "valid" else (int(begin[0]), int(begin[1]))


class IRSegment(nn.Module):
    """A contiguous part of an imported IR graph: one tensor in, one tensor out.

    Args:
        steps: the ops in topological order.
        input_key: the value key the segment's input fills.
        output_key: the value key returned.
        params, buffers: float32 tensors by safe name (trainable parameters, frozen buffers).
        constant_names: safe name -> the IR constant's friendly name (for reports and write-back).
    """

    def __init__(
        self,
        steps: list[_Step],
        input_key: tuple,
        output_key: tuple,
        params: dict[str, torch.Tensor],
        buffers: dict[str, torch.Tensor],
        constant_names: dict[str, str],
    ):
        super().__init__()
        self.steps, self.input_key, self.output_key = steps, input_key, output_key
        self.params = nn.ParameterDict({k: nn.Parameter(v) for k, v in params.items()})
        for key, value in buffers.items():
            self.register_buffer(key, value)
        self._buffer_names = set(buffers)
        self.constant_names = dict(constant_names)

    def spec(self) -> dict:
        """Plain-value description (see :meth:`IRNetwork.spec`)."""

        def plain(kind, ref):
            if kind == "const" and isinstance(ref, np.ndarray):
                return [kind, {"array": ref.tolist(), "dtype": str(ref.dtype)}]
            if kind == "const" and isinstance(ref, np.generic):
                return [kind, ref.item()]
            return [kind, list(ref) if kind == "value" else ref]

        steps = [
            {
                "kind": s.kind,
                "name": s.name,
                "inputs": [plain(k, r) for k, r in s.inputs],
                "outputs": [list(o) for o in s.outputs],
                "attrs": s.attrs,
            }
            for s in self.steps
        ]
        return {
            "steps": steps,
            "input_key": list(self.input_key),
            "output_key": list(self.output_key),
            "params": {k: list(v.shape) for k, v in self.params.items()},
            "buffers": {k: list(getattr(self, k).shape) for k in sorted(self._buffer_names)},
            "constant_names": self.constant_names,
        }

    @classmethod
    def from_spec(cls, spec: dict) -> "IRSegment":
        """Inverse of :meth:`spec`, with zero tensors."""

        def value(kind, ref):
            if kind == "const" and isinstance(ref, dict):
                return kind, np.asarray(ref["array"], dtype=ref["dtype"])
            return kind, tuple(ref) if kind == "value" else ref

        steps = [
            _Step(
                s["kind"],
                s["name"],
                [value(k, r) for k, r in s["inputs"]],
                [tuple(o) for o in s["outputs"]],
                dict(s["attrs"]),
            )
            for s in spec["steps"]
        ]
        return cls(
            steps,
            tuple(spec["input_key"]),
            tuple(spec["output_key"]),
            {k: torch.zeros(shape) for k, shape in spec["params"].items()},
            {k: torch.zeros(shape) for k, shape in spec["buffers"].items()},
            spec["constant_names"],
        )

    def parameters_before(self, kind: str, occurrence: int = -1) -> list[nn.Parameter]:
        """The parameters used by the steps before the ``occurrence``-th op of type ``kind`` (e.g. the last
        ``AvgPool`` before the tap: OSNet's stride-8 -> 16 transition), to freeze early stages.

        Raises:
            ValueError: the segment has no such op.
        """
        positions = [n for n, s in enumerate(self.steps) if s.kind == kind]
        if not positions:
            raise ValueError(f"no {kind} op in this segment")
        names = {ref for s in self.steps[: positions[occurrence]] for k, ref in s.inputs if k == "param"}
        return [self.params[n] for n in sorted(names) if n in self.params]

    def _tensor(self, name: str) -> torch.Tensor:
        return getattr(self, name) if name in self._buffer_names else self.params[name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the segment on ``x`` (``float32``; ``[N, 3, H, W]`` BGR 0-255 for a whole model's trunk)."""
        values: dict[tuple, Any] = {self.input_key: x}
        for index, step in enumerate(self.steps):
            args = []
            for kind, ref in step.inputs:
                args.append(values[ref] if kind == "value" else self._tensor(ref) if kind == "param" else ref)
            out = _run_op(step, args, int(x.shape[0]))
            outs = out if isinstance(out, tuple) else (out,)
            for key, value in zip(step.outputs, outs):
                values[key] = value
            for key in self._released_after()[index]:  # keeping every activation took ~100 MB per crop
                values.pop(key, None)
        return values[self.output_key]

    def _released_after(self) -> list[list[tuple]]:
        """Per step, the values no later step reads (made once): freed as soon as they are used up."""
        released = getattr(self, "_released", None)
        if released is None:
            last: dict[tuple, int] = {}
            for index, step in enumerate(self.steps):
                for kind, ref in step.inputs:
                    if kind == "value":
                        last[ref] = index
            released = [[] for _ in self.steps]
            for key, index in last.items():
                if key != self.output_key:
                    released[index].append(key)
            self._released = released
        return released


def _as_list(value) -> list:
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.flatten().tolist()]
    if isinstance(value, np.ndarray):
        return [int(v) for v in value.flatten().tolist()]
    return list(value) if isinstance(value, (list, tuple)) else [int(value)]


def _is_shape(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray, int))


def _reshape(step: _Step, x: torch.Tensor, target, batch: int) -> torch.Tensor:
    # every size is a Python int here (a trace records constants), and the batch axis becomes -1 below
    sizes = [int(v) for v in x.shape]
    numel = int(np.prod(sizes))
    shape = _as_list(target)
    if step.attrs.get("special_zero", False):
        shape = [sizes[i] if v == 0 else v for i, v in enumerate(shape)]
    if -1 in shape:
        known = int(np.prod([v for v in shape if v != -1])) or 1
        shape[shape.index(-1)] = numel // known
    if not shape or shape[0] != batch or int(np.prod(shape)) != numel:
        raise UnsupportedIRError(
            f"Reshape '{step.name}' to {shape} does not keep the batch axis first; only "
            f"batch-preserving reshapes are supported"
        )
    return x.reshape(-1, *shape[1:])


def _run_op(step: _Step, args: list, batch: int):
    """Evaluate one op on torch tensors (or Python lists for shape values)."""
    kind, attrs = step.kind, step.attrs
    if kind in ("Result",):
        return args[0]
    if kind == "Convert":
        value = args[0]
        return value if _is_shape(value) else value.float()
    if kind == "Convolution":
        return F.conv2d(args[0], args[1], None, tuple(attrs["strides"]), _pads(step), tuple(attrs["dilations"]))
    if kind == "GroupConvolution":
        weight = args[1]
        groups = weight.shape[0]
        return F.conv2d(
            args[0],
            weight.reshape(-1, *weight.shape[2:]),
            None,
            tuple(attrs["strides"]),
            _pads(step),
            tuple(attrs["dilations"]),
            groups,
        )
    if kind in _ELEMENTWISE:
        a, b = args
        if _is_shape(a) and _is_shape(b):
            return [int(v) for v in _ELEMENTWISE[kind](torch.tensor(_as_list(a)), torch.tensor(_as_list(b)))]
        return _ELEMENTWISE[kind](a, b)
    if kind == "Relu":
        return F.relu(args[0])
    if kind == "Sigmoid":
        return torch.sigmoid(args[0])
    if kind == "PRelu":
        x, slope = args
        if slope.numel() == 1:
            slope = slope.reshape(())
        elif slope.dim() == 1:
            slope = slope.reshape(1, -1, *([1] * (x.dim() - 2)))
        return torch.where(x >= 0, x, x * slope)
    if kind == "MVN":
        x, axes = args[0], sorted(a % args[0].dim() for a in _as_list(args[1]))
        eps = float(attrs["eps"])
        if not attrs.get("normalize_variance", True):
            return x - x.mean(dim=axes, keepdim=True)
        inside = str(attrs.get("eps_mode", "INSIDE_SQRT")).upper() == "INSIDE_SQRT"
        if inside and x.dim() == 4 and axes == [2, 3]:
            return F.instance_norm(x, eps=eps)
        mean = x.mean(dim=axes, keepdim=True)
        var = (x - mean).pow(2).mean(dim=axes, keepdim=True)
        return (x - mean) / (torch.sqrt(var + eps) if inside else torch.sqrt(var) + eps)
    if kind == "MaxPool":
        out = F.max_pool2d(
            args[0],
            tuple(attrs["kernel"]),
            tuple(attrs["strides"]),
            _pads(step),
            tuple(attrs.get("dilations", [1, 1])),
            ceil_mode=attrs.get("rounding_type") == "ceil",
        )
        return out, None
    if kind == "AvgPool":
        return F.avg_pool2d(
            args[0],
            tuple(attrs["kernel"]),
            tuple(attrs["strides"]),
            _pads(step),
            ceil_mode=attrs.get("rounding_type") == "ceil",
            count_include_pad=not attrs.get("exclude-pad", False),
        )
    if kind == "ReduceMean":
        return args[0].mean(dim=[a % args[0].dim() for a in _as_list(args[1])], keepdim=attrs["keep_dims"])
    if kind == "MatMul":
        a, b = args
        if attrs.get("transpose_a"):
            a = a.transpose(-1, -2)
        if b.dim() == 2:
            return F.linear(a, b) if attrs.get("transpose_b") else a @ b
        return a @ (b.transpose(-1, -2) if attrs.get("transpose_b") else b)
    if kind == "Reshape":
        return _reshape(step, args[0], args[1], batch)
    if kind == "Squeeze":
        return args[0].squeeze(dim=tuple(_as_list(args[1]))) if len(args) > 1 else args[0].squeeze()
    if kind == "Unsqueeze":
        x = args[0]
        for axis in sorted(_as_list(args[1])):
            x = x.unsqueeze(axis)
        return x
    if kind == "ShapeOf":
        return [int(v) for v in args[0].shape]
    if kind == "Gather":
        data, indices, axis = args[0], _as_list(args[1]), _as_list(args[2])[0]
        scalar = isinstance(args[1], (int, np.integer)) or (isinstance(args[1], np.ndarray) and args[1].ndim == 0)
        if _is_shape(data):
            picked = [_as_list(data)[i] for i in indices]
            return picked[0] if scalar else picked
        index = torch.tensor(indices, device=data.device)
        out = data.index_select(axis, index)
        return out.squeeze(axis) if scalar else out
    if kind == "Concat":
        if all(_is_shape(a) for a in args):
            return [v for a in args for v in _as_list(a)]
        return torch.cat(args, dim=int(attrs["axis"]))
    raise UnsupportedIRError(f"op {kind} '{step.name}' is not supported")


class IRNetwork(nn.Module):
    """An imported IR re-id model: ``head(trunk(x))``.

    Input: ``float32 [N, 3, H, W]`` in the IR's own pixel convention (BGR 0-255 for the Open Model Zoo models; the
    conversion to what the layers want is inside, as frozen buffers), ``H, W`` = :attr:`input_size`.
    Output: ``float32 [N, D]`` embedding (not normalised), as OpenVINO computes it.

    Attributes:
        trunk: :class:`IRSegment` input -> tap map ``float32 [N, tap_channels, H/16, W/16]``.
        head: :class:`IRSegment` tap map -> ``[N, D]``.
        input_size: ``(H, W)`` in pixels.
        tap_name: friendly name of the tap op.
        tap_channels: channels of the tap map.
        dims: embedding length ``D``.
        source: the ``.xml`` path.
    """

    def __init__(
        self,
        trunk: IRSegment,
        head: IRSegment,
        input_size: tuple[int, int],
        tap_name: str,
        tap_channels: int,
        dims: int,
        source: str,
    ):
        super().__init__()
        self.trunk, self.head = trunk, head
        self.input_size, self.tap_name, self.tap_channels, self.dims = input_size, tap_name, tap_channels, dims
        self.source = source

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``float32 [N, 3, H, W]`` -> ``float32 [N, D]``."""
        return self.head(self.trunk(x))

    def spec(self) -> dict:
        """The graph as plain values (op list, attributes, constant shapes; no weights), stored in checkpoint
        metadata so :meth:`from_spec` can rebuild the module where the IR file is not at hand."""
        return {
            "input_size": list(self.input_size),
            "tap_name": self.tap_name,
            "tap_channels": self.tap_channels,
            "dims": self.dims,
            "source": Path(self.source).name,
            "trunk": self.trunk.spec(),
            "head": self.head.spec(),
        }

    @classmethod
    def from_spec(cls, spec: dict) -> "IRNetwork":
        """Inverse of :meth:`spec`: the module with zero weights of the right shapes (load a state_dict next).

        Raises:
            ValueError: not a spec written by :meth:`spec`.
        """
        try:
            return cls(
                IRSegment.from_spec(spec["trunk"]),
                IRSegment.from_spec(spec["head"]),
                tuple(spec["input_size"]),
                spec["tap_name"],
                int(spec["tap_channels"]),
                int(spec["dims"]),
                spec["source"],
            )
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"the imported-IR graph description is incomplete ({type(exc).__name__}: {exc})") from None


def _read(xml: Path):
    import openvino as ov

    try:
        return ov.Core().read_model(str(xml))
    except Exception as exc:
        raise WeightsError(
            f"OpenVINO IR {xml} could not be read ({type(exc).__name__}); is it an IR .xml with its .bin beside it?"
        ) from exc


def _output_shape(node, port: int = 0) -> list[int]:
    shape = node.output(port).get_partial_shape()
    return [d.get_length() if d.is_static else -1 for d in shape]


def import_ir(xml: str | Path, tap: Optional[str] = None, tap_stride: int = 16) -> IRNetwork:
    """Read an OpenVINO IR re-id model and rebuild it as an :class:`IRNetwork`.

    Args:
        xml: the IR's ``.xml`` (its ``.bin`` beside it) or the folder holding it.
        tap: friendly name of the op whose output the trunk returns; default: the last op with a 4-D output of
            spatial size ``(H / tap_stride, W / tap_stride)``.
        tap_stride: the tap's stride in input pixels when ``tap`` is not given.

    Returns:
        The module, float32, in training mode.

    Raises:
        WeightsError: not an IR or unreadable.
        UnsupportedIRError: an op outside :data:`SUPPORTED_OPS` (named), no op at the tap stride, or a graph whose
            head needs more than the tap map.
    """

    found = openvino_xml(xml)
    if found is None:
        raise WeightsError(f"{xml} is not an OpenVINO IR (expected a .xml file with its .bin, or a folder holding one)")
    model = _read(found)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedIRError(
            f"{found} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; a re-id "
            f"IR takes one image batch and gives one embedding"
        )
    ops = list(model.get_ordered_ops())
    unsupported = sorted({op.get_type_name() for op in ops} - SUPPORTED_OPS)
    if unsupported:
        first = next(op for op in ops if op.get_type_name() in unsupported)
        raise UnsupportedIRError(
            f"{found} uses op {first.get_type_name()} ('{first.get_friendly_name()}')"
            f"{' and ' + ', '.join(unsupported[1:]) if len(unsupported) > 1 else ''}, which the "
            f"IR importer cannot rebuild; supported: {', '.join(sorted(SUPPORTED_OPS))}"
        )
    index = {op.get_instance_id(): i for i, op in enumerate(ops)}
    in_shape = (
        _output_shape(ops[0]) if ops[0].get_type_name() == "Parameter" else _output_shape(model.inputs[0].get_node())
    )
    height, width = in_shape[2], in_shape[3]

    # Constants (through their Convert) -> numpy values
    constants: dict[int, np.ndarray] = {}
    for op in ops:
        kind = op.get_type_name()
        if kind == "Constant":
            constants[index[op.get_instance_id()]] = np.asarray(op.get_data()).copy()
        elif kind == "Convert":
            source = op.input_value(0).get_node()
            src = index[source.get_instance_id()]
            if src in constants:
                target = np.float32 if op.get_output_element_type(0).is_real() else np.int64
                constants[index[op.get_instance_id()]] = constants[src].astype(target)

    parameter = next(op for op in ops if op.get_type_name() == "Parameter")
    # the preprocessing prefix: ops fed (only) by the input through preprocessing ops, before the first layer
    preprocessing: set[int] = set()
    frontier = {index[parameter.get_instance_id()]}
    for op in ops:
        i = index[op.get_instance_id()]
        if i in constants or op.get_type_name() not in _PREPROCESSING_OPS:
            continue
        sources = [index[v.get_node().get_instance_id()] for v in op.input_values()]
        tensor_sources = [s for s in sources if s not in constants]
        if tensor_sources and all(s in frontier for s in tensor_sources):
            preprocessing.add(i)
            frontier.add(i)

    compute = [op for op in ops if index[op.get_instance_id()] not in constants]
    if tap is None:
        spatial = [
            op
            for op in compute
            if len(_output_shape(op)) == 4
            and _output_shape(op)[2:] == [height // tap_stride, width // tap_stride]
            and op.get_type_name() not in ("Parameter", "Result")
        ]
        if not spatial:
            raise UnsupportedIRError(
                f"{found} has no op with a stride-{tap_stride} output "
                f"({height // tap_stride}x{width // tap_stride}) to tap for the part branches"
            )
        tap_op = spatial[-1]
    else:
        tap_op = next((op for op in compute if op.get_friendly_name() == tap), None)
        if tap_op is None:
            raise UnsupportedIRError(f"{found} has no op named '{tap}' to tap")
    tap_index = index[tap_op.get_instance_id()]
    tap_position = next(n for n, op in enumerate(compute) if index[op.get_instance_id()] == tap_index)

    segments = (
        [op for op in compute[: tap_position + 1] if op.get_type_name() != "Parameter"],
        [op for op in compute[tap_position + 1 :] if op.get_type_name() != "Result"],
    )
    result = next(op for op in compute if op.get_type_name() == "Result")
    output_key = (index[result.input_value(0).get_node().get_instance_id()], result.input_value(0).get_index())
    input_keys = ((index[parameter.get_instance_id()], 0), (tap_index, 0))
    owner: dict[int, int] = {}
    built = []
    for segment_number, segment_ops in enumerate(segments):
        steps, params, buffers, names = [], {}, {}, {}
        produced = {input_keys[segment_number]}
        for op in segment_ops:
            i = index[op.get_instance_id()]
            inputs = []
            for value in op.input_values():
                src = index[value.get_node().get_instance_id()]
                if src in constants:
                    data = constants[src]
                    if np.issubdtype(data.dtype, np.floating) and op.get_type_name() not in ("Reshape", "Gather"):
                        name = f"c{src}_{_safe(value.get_node().get_friendly_name())[:40]}"
                        if owner.setdefault(src, segment_number) != segment_number:
                            raise UnsupportedIRError(
                                f"{found}: constant '{value.get_node().get_friendly_name()}' "
                                f"is used on both sides of the tap '{tap_op.get_friendly_name()}'"
                            )
                        tensor = torch.from_numpy(np.ascontiguousarray(data, np.float32))
                        (buffers if i in preprocessing else params)[name] = tensor
                        names[name] = value.get_node().get_friendly_name()
                        inputs.append(("param", name))
                    else:
                        inputs.append(("const", data if data.ndim else data.item()))
                else:
                    key = (src, value.get_index())
                    if key not in produced:
                        raise UnsupportedIRError(
                            f"{found}: op '{op.get_friendly_name()}' after the tap "
                            f"'{tap_op.get_friendly_name()}' reads a value from before it; "
                            f"choose another tap"
                        )
                    inputs.append(("value", key))
            attrs = {k: v for k, v in op.get_attributes().items() if k not in ("element_type", "value", "shape")}
            outputs = [(i, port) for port in range(op.get_output_size())]
            produced.update(outputs)
            steps.append(_Step(op.get_type_name(), op.get_friendly_name(), inputs, outputs, attrs))
        # buffers get a prefix so they cannot collide with ParameterDict's attribute
        built.append(
            (
                steps,
                input_keys[segment_number],
                (tap_index, 0) if segment_number == 0 else output_key,
                params,
                {f"pre_{k}": v for k, v in buffers.items()},
                {
                    **{k: v for k, v in names.items() if k in params},
                    **{f"pre_{k}": v for k, v in names.items() if k in buffers},
                },
            )
        )
        # rename buffer references in the steps
        for step in steps:
            step.inputs = [
                ("param", f"pre_{ref}") if kind == "param" and ref in buffers else (kind, ref)
                for kind, ref in step.inputs
            ]
    trunk = IRSegment(*built[0])
    head = IRSegment(*built[1])
    tap_channels = _output_shape(tap_op)[1]
    dims = _output_shape(result.input_value(0).get_node(), result.input_value(0).get_index())[-1]
    return IRNetwork(trunk, head, (height, width), tap_op.get_friendly_name(), tap_channels, dims, str(found.resolve()))
