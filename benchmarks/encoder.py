"""Re-id encoder throughput report: crops/s against batch size, precision and memory format.

    python benchmarks/encoder.py                          # default network (ResNet-50, 1024-D, 256x128) on CPU
    python benchmarks/encoder.py --device cuda            # and on the GPU, fp32 / bf16 / fp16, channels_last
    python benchmarks/encoder.py --arch resnet18 --batch-sizes 1,32,256 --weights model.pt

Two numbers per setting:
    * network: forward passes on a batch already on the device (the network's own speed);
    * encode: ``ReIDEncoder.encode`` from uint8 BGR crops of varied sizes (resize + normalise + transfer + forward),
      what ingest gets.
    python benchmarks/encoder.py --compare default,../shared/weights/person-reidentification-retail-0286,\
        ../shared/weights/person-reidentification-retail-0277          # models side by side, one run

``--compare`` encodes the same crops with each model (``default`` is the shipped one; any path ``--reid`` takes,
OpenVINO IR included) through ``ReIDEncoder.encode`` at each batch size, alternating models round by round so that
a busy machine slows all of them alike, and prints crops/s per model.
Target (issue 3): at least 10,000 crops/s for the default network at 256x128 on an H200. This prints numbers; it
does not pass or fail. Untrained weights are used unless --weights is given (speed does not depend on them).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _settings(device: str, requested: list[str] | None) -> list[tuple[str, bool]]:
    """(precision, channels_last) pairs to measure."""
    if requested:
        out = []
        for item in requested:
            precision, _, layout = item.partition("+")
            out.append((precision, layout == "cl"))
        return out
    if device.startswith("cuda"):
        return [("fp32", False), ("fp32", True), ("bf16", True), ("fp16", True)]
    return [("fp32", False), ("bf16", True)]


def _timed(fn, min_seconds: float, sync) -> tuple[float, int]:
    fn()  # warm-up (cuDNN autotuning, lazy init)
    sync()
    runs, t0 = 0, time.perf_counter()
    while True:
        fn()
        runs += 1
        sync()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return elapsed, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--arch", default="resnet50", choices=["resnet50", "resnet34", "resnet18"])
    parser.add_argument("--weights", default=None, help="a reid-app checkpoint (default: untrained network)")
    parser.add_argument(
        "--batch-sizes", default=None, help="comma-separated [default: 1,8,32,64,128,256 on GPU; 1,8,32,64 on CPU]"
    )
    parser.add_argument(
        "--settings",
        default=None,
        help="comma-separated precision[+cl] (fp32, bf16, fp16; +cl = channels_last) "
        "[default: all four on GPU; fp32 and bf16+cl on CPU]",
    )
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=None,
        help="timed seconds per measurement [default: 2 on GPU, 0 (one pass) on CPU]",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument(
        "--compare",
        default=None,
        metavar="MODEL,MODEL,...",
        help="compare these re-id models' encode crops/s ('default' = the shipped model)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --compare (the best round is reported)")
    args = parser.parse_args()
    if args.compare:
        _compare(args)
        return

    import numpy as np
    import torch

    from models.configs import JointLossConfig
    from models.encoders import JointLossEncoder, build_jointloss_encoder, preprocess, resolve_device
    from models.jointloss import JointLossNet

    device = resolve_device(args.device)
    on_cuda = device.startswith("cuda")
    if args.threads:
        torch.set_num_threads(args.threads)
    if on_cuda:
        torch.backends.cudnn.benchmark = True
    batch_sizes = [int(b) for b in (args.batch_sizes or ("1,8,32,64,128,256" if on_cuda else "1,8,32,64")).split(",")]
    min_seconds = args.min_seconds if args.min_seconds is not None else (2.0 if on_cuda else 0.0)
    sync = (lambda: torch.cuda.synchronize(device)) if on_cuda else (lambda: None)
    if args.weights:
        net = build_jointloss_encoder(args.weights).net
    else:
        torch.manual_seed(0)
        net = JointLossNet(JointLossConfig(backbone=args.arch))
    config = net.config
    gpu = torch.cuda.get_device_name(device) if on_cuda else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"joint-loss network {config.backbone}, last stride {config.last_stride}, input "
        f"{config.input_size[0]}x{config.input_size[1]}, descriptor {config.dims}-D, {config.num_parts} parts; "
        f"device {device} ({gpu}); torch {torch.__version__}"
    )
    rng = np.random.default_rng(0)
    pool = [
        rng.integers(0, 255, (int(rng.integers(120, 400)), int(rng.integers(50, 160)), 3), dtype=np.uint8)
        for _ in range(max(batch_sizes))
    ]
    header = f"{'precision':<10}{'layout':<15}{'batch':>6}{'network crops/s':>18}{'encode crops/s':>16}"
    print(header)
    print("-" * len(header))
    best = 0.0
    for precision, channels_last in _settings(device, args.settings.split(",") if args.settings else None):
        encoder = JointLossEncoder(
            net,
            "bench",
            "bench",
            "bench",
            device,
            batch_size=max(batch_sizes),
            precision=precision,
            channels_last=channels_last,
        )
        for batch in batch_sizes:
            images, boxes = preprocess(pool[:batch], None, encoder.input_size)
            fixed = np.broadcast_to(net.fixed_boxes.cpu().numpy(), (batch, config.num_parts, 4)).copy()
            seconds, runs = _timed(lambda: encoder._forward(images, fixed), min_seconds, sync)
            network = batch * runs / seconds
            seconds, runs = _timed(lambda: encoder.encode(pool[:batch]), min_seconds, sync)
            encode = batch * runs / seconds
            best = max(best, network)
            layout = "channels_last" if channels_last else "contiguous"
            print(f"{precision:<10}{layout:<15}{batch:>6}{network:>18,.0f}{encode:>16,.0f}", flush=True)
    print(
        f"best network throughput: {best:,.0f} crops/s"
        + (" (target on an H200: 10,000 crops/s for the default network)" if on_cuda else "")
    )


def _compare(args) -> None:
    import numpy as np
    import torch

    from models.encoders import load_encoder, resolve_device

    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    specs = [m.strip() for m in args.compare.split(",") if m.strip()]
    encoders = [load_encoder(None if m == "default" else m, device) for m in specs]
    batch_sizes = [int(b) for b in (args.batch_sizes or "1,32").split(",")]
    rng = np.random.default_rng(0)
    pool = [
        rng.integers(0, 255, (int(rng.integers(120, 400)), int(rng.integers(50, 160)), 3), dtype=np.uint8)
        for _ in range(max(batch_sizes) * 4)
    ]
    print(f"device {device}; torch threads {torch.get_num_threads()}; {len(pool)} crops of 50-160 x 120-400 px")
    header = f"{'model':<42}{'input':>9}{'dims':>6}" + "".join(f"{f'batch {b}':>12}" for b in batch_sizes)
    print(header)
    print("-" * len(header))
    best = {(i, b): 0.0 for i in range(len(encoders)) for b in batch_sizes}
    for enc in encoders:
        enc.encode(pool[:8])  # warm-up
    for _ in range(args.rounds):
        for b in batch_sizes:
            for i, enc in enumerate(encoders):
                enc.batch_size = b
                t0 = time.perf_counter()
                enc.encode(pool)
                best[i, b] = max(best[i, b], len(pool) / (time.perf_counter() - t0))
    for i, enc in enumerate(encoders):
        size = f"{enc.input_size[0]}x{enc.input_size[1]}"
        print(f"{enc.name:<42}{size:>9}{enc.dims:>6}" + "".join(f"{best[i, b]:>12,.0f}" for b in batch_sizes))
    print("crops/s of ReIDEncoder.encode (resize + normalise + forward), best of the rounds")


if __name__ == "__main__":
    main()
