"""Making the damaged, odd and hostile inputs of the reliability tests from real files."""

from __future__ import annotations

import shutil
import sqlite3
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def damage_packets(source: Path, target: Path, packet_indices) -> Path:
    """A copy of ``source`` whose video packets at ``packet_indices`` (demux order) are overwritten with random
    bytes, the container index (moov) intact: the decoder rejects exactly those packets."""
    container = av.open(str(source))
    try:
        stream = container.streams.video[0]
        packets = [(p.pos, p.size) for p in container.demux(stream) if p.size]
    finally:
        container.close()
    shutil.copy(source, target)
    rng = np.random.default_rng(7)
    with target.open("r+b") as fh:
        for i in packet_indices:
            pos, size = packets[i]
            fh.seek(pos)
            fh.write(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    return target


def variable_rate_mkv(source: Path, target: Path, frames: int = 60) -> Path:
    """A variable-frame-rate MKV made from ``source``: a third of the frames dropped, the rest 100 or 200 ms
    apart (about 6.7 frames/s), with the container's rate field at 1000 as VFR muxers write it."""
    src = av.open(str(source))
    out = av.open(str(target), "w")
    try:
        in_stream = src.streams.video[0]
        stream = out.add_stream("libx264")
        stream.width, stream.height = in_stream.codec_context.width, in_stream.codec_context.height
        stream.pix_fmt = "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        stream.codec_context.framerate = Fraction(1000, 1)
        pts = 0
        for i, frame in enumerate(src.decode(in_stream)):
            if i >= frames:
                break
            if i % 3 == 2:
                continue
            new = frame.reformat(format="yuv420p")
            pts += 100 if i % 2 else 200
            new.pts, new.time_base = pts, Fraction(1, 1000)
            for packet in stream.encode(new):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    finally:
        out.close()
        src.close()
    return target


def damage_database(source: Path, target: Path) -> Path:
    """A copy of a SQLite database (WAL folded in) with one b-tree page in the middle overwritten."""
    from tests.conftest import copy_db

    copy_db(source, target.parent / ".copy").rename(target)
    con = sqlite3.connect(target)
    page_size, pages = con.execute("PRAGMA page_size").fetchone()[0], con.execute("PRAGMA page_count").fetchone()[0]
    con.close()
    with target.open("r+b") as fh:
        fh.seek((pages // 3 - 1) * page_size)
        fh.write(b"\xff" * 64)
    return target


def huge_png(target: Path, width: int = 40000, height: int = 40000) -> Path:
    """A valid 1-bit greyscale PNG of ``width`` x ``height`` pixels (small on disk, gigabytes once decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    with target.open("wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)))
        fh.write(chunk(b"IDAT", data))
        fh.write(chunk(b"IEND", b""))
    return target


def broken_reid_onnx(target: Path, kind: str, size: tuple[int, int] = (64, 32)) -> Path:
    """A tiny ONNX "re-id model" ``[N, 3, H, W] -> [N, 128]`` that is broken in one way.

    kind: ``nan`` (outputs NaN), ``zeros`` (outputs 0), ``4d`` (outputs ``[N, 128, 1, 1]``, a usable model whose
    pooling was kept), ``huge`` (declares a 100000 x 100000 input).
    """
    import onnx
    from onnx import TensorProto, helper

    height, width = (100000, 100000) if kind == "huge" else size
    rng = np.random.default_rng(0)
    weight = helper.make_tensor(
        "w", TensorProto.FLOAT, [3, 128], rng.normal(size=(3, 128)).astype(np.float32).ravel().tolist()
    )
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["pooled"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w"], ["features"]),
    ]
    initializers = [weight]
    out_shape = ["N", 128]
    if kind == "nan":
        initializers.append(helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]))
        nodes += [
            helper.make_node("Mul", ["features", "zero"], ["zeroed"]),
            helper.make_node("Div", ["zeroed", "zeroed"], ["y"]),
        ]
    elif kind == "zeros":
        initializers.append(helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]))
        nodes.append(helper.make_node("Mul", ["features", "zero"], ["y"]))
    elif kind == "4d":
        initializers.append(helper.make_tensor("shape", TensorProto.INT64, [4], [-1, 128, 1, 1]))
        nodes.append(helper.make_node("Reshape", ["features", "shape"], ["y"]))
        out_shape = ["N", 128, 1, 1]
    else:
        nodes.append(helper.make_node("Identity", ["features"], ["y"]))
    graph = helper.make_graph(
        nodes,
        "broken",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, height, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(target))
    return target
