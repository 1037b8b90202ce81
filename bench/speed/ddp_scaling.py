"""Data-parallel scaling: images/s with 1 and N torchrun processes on the same per-rank work.

CPU processes use gloo and one thread each, so N processes use N cores; on a machine with
GPUs pass --gpus to run one process per GPU with NCCL. Efficiency = rate(N) / (N * rate(1)).
Run from the repo root:  .venv/bin/python -m bench.speed.ddp_scaling [--procs 2] [--gpus]
Prints a table and writes bench/results/ddp_scaling.json.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.protocol import RESULTS, ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def images_per_second(procs: int, work: Path, gpus: bool) -> float:
    out = work / f"run{procs}"
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={procs}",
           f"--master_port={free_port()}", "-m", "facegan", "train", "--preset", "demo", "--epochs", "2",
           "--synthetic-n", str(2048 * procs), "--out", str(out), "--cache-dir", str(work / "cache"),
           "--quiet", "--device", "cuda" if gpus else "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd, cwd=ROOT, check=True, env=env, capture_output=True)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    first_epoch_end = [r for r in rows if r["epoch"] == 1][-1]
    last = rows[-1]
    # time the second epoch only: the first includes start-up and warm-up
    return (last["images"] - first_epoch_end["images"]) / (last["time"] - first_epoch_end["time"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--gpus", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facegan-ddp-") as tmp:
        one = images_per_second(1, Path(tmp), args.gpus)
        many = images_per_second(args.procs, Path(tmp), args.gpus)
    efficiency = many / (args.procs * one)
    kind = "GPU (NCCL)" if args.gpus else "CPU (gloo, 1 thread each)"
    print(f"demo preset (32 px, conv_dim 64, batch 64 a rank), {kind}")
    print(f"  1 process:  {one:8.0f} images/s")
    print(f"  {args.procs} processes: {many:8.0f} images/s   scaling efficiency {efficiency:.0%}")
    out = RESULTS / "ddp_scaling.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"kind": kind, "procs": args.procs, "one": one, "many": many,
                               "efficiency": efficiency}, indent=2) + "\n")


if __name__ == "__main__":
    main()
