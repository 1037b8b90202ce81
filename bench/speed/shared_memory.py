"""Memory per process: peak RSS of 1 and N torchrun processes training on the CPU from one large cache.

Writes a synthetic image cache of --n faces at --image-size px (default 50,000 at 64 px, about
600 MB) where `cached_image_array` looks for it, beside a folder of as many empty stand-in files
(the cache is what training reads; nothing is decoded), then trains --steps steps of tiny nets
with 1 and with --procs torchrun processes (gloo, one thread each) and reports each process's
memory, read from /proc/self/status and /proc/self/smaps_rollup by a small wrapper around
`facegan train`:
  - peak RSS (VmHWM): every resident page, the cache's pages mapped from the OS's page cache
    included; those are shared by all the processes, so N processes do not hold N copies;
  - peak private memory (RssAnon, sampled every 20 ms): what is each process's own;
  - peak PSS (sampled every 200 ms): resident memory with each shared page divided among the
    processes sharing it, so the PSS of all processes adds up to the memory they use together.
--base DIR measures another checkout's facegan too (e.g. a worktree of an older commit, which
copies the cache into each process's RAM), on the same cache, for a before/after table.
Run from the repo root:
    .venv/bin/python -m bench.speed.shared_memory [--n 50000] [--image-size 64] [--procs 2] [--base DIR]
Prints a table and writes bench/results/shared_memory.json.
"""
from __future__ import annotations

import argparse
import json
import os
import runpy
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

STATUS_FIELDS = ("VmHWM", "VmRSS", "RssAnon", "RssFile")
BATCH = 64


# ---------------------------------------------------------------- the wrapper in each process

def _status() -> dict[str, int]:
    """/proc/self/status's memory fields, in bytes."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in STATUS_FIELDS:
            values[key] = int(rest.split()[0]) * 1024
    return values


def _pss() -> dict[str, int]:
    try:
        text = Path("/proc/self/smaps_rollup").read_text()
    except OSError:  # an older kernel: no PSS figures
        return {}
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key == "Pss":
            values[key] = int(rest.split()[0]) * 1024
    return values


def worker(report: Path, argv: list[str]) -> int:
    """Run `facegan <argv>` in this process, sampling its memory; write the figures to
    report/rank<RANK>.json (also when training fails, with its exit status)."""
    peak_anon, peak_pss, done = [0], [0], threading.Event()

    def sample() -> None:
        ticks = 0
        while not done.wait(0.02):
            peak_anon[0] = max(peak_anon[0], _status().get("RssAnon", 0))
            ticks += 1
            if ticks % 10 == 0:  # smaps_rollup walks every mapping: less often
                peak_pss[0] = max(peak_pss[0], _pss().get("Pss", 0))
    threading.Thread(target=sample, daemon=True).start()
    code = 1
    sys.argv = ["facegan", *argv]
    try:  # `python -m facegan`, whichever checkout's: its modules moved between versions
        runpy.run_module("facegan", run_name="__main__", alter_sys=True)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        done.set()
        status = _status()
        figures = {"rank": int(os.environ.get("RANK", "0")), "exit": code,
                   "peak_rss": status["VmHWM"], "peak_private": max(peak_anon[0], status.get("RssAnon", 0)),
                   "peak_pss": max(peak_pss[0], _pss().get("Pss", 0))}
        (report / f"rank{figures['rank']}.json").write_text(json.dumps(figures) + "\n")
    return code


# ---------------------------------------------------------------- the benchmark

def write_cache(folder: Path, cache: Path, n: int, size: int) -> int:
    """n stand-in files in folder and, where facegan looks for their cache, n synthetic faces
    (a few thousand distinct ones, repeated); returns the cache's size in bytes."""
    import numpy as np

    from facegan.data.images import cache_path
    from facegan.data.synthetic import make_faces

    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"{i:06d}.png").touch()
    path = cache_path(folder, size, cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    faces, _ = make_faces(min(n, 2048), size, seed=0)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
    for start in range(0, n, len(faces)):
        out[start:start + len(faces)] = faces[:n - start]
    out.flush()
    del out
    return path.stat().st_size


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(procs: int, code: Path, folder: Path, cache: Path, size: int, steps: int, work: Path) -> list[dict]:
    """Each process's figures for `steps` steps of tiny nets on procs CPU processes."""
    label = f"{code.name}-{procs}"
    report, out = work / f"report-{label}", work / f"run-{label}"
    report.mkdir()
    train = ["train", "--data", "folder", "--data-dir", str(folder), "--cache-dir", str(cache),
             "--image-size", str(size), "--conv-dim", "8", "--z-size", "16", "--batch-size", str(BATCH),
             "--epochs", "1", "--epoch-images", str(steps * BATCH * procs), "--n-fixed", "4",
             "--device", "cpu", "--quiet", "--out", str(out)]
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={procs}",
           f"--master_port={free_port()}", __file__, "--worker", str(report), "--", *train]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(code)}
    run = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    rows = [json.loads(p.read_text()) for p in sorted(report.glob("rank*.json"))]
    if run.returncode != 0 or len(rows) != procs or any(r["exit"] for r in rows):
        sys.exit(f"{procs} process(es) of {code} failed:\n{run.stderr[-3000:]}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="faces in the cache (default 50,000)")
    parser.add_argument("--image-size", type=int, default=64, choices=(32, 64, 128))
    parser.add_argument("--procs", type=int, default=2, help="processes of the second measurement")
    parser.add_argument("--steps", type=int, default=10, help="training steps (64 images a process each)")
    parser.add_argument("--base", type=Path, help="another checkout whose facegan to measure as well")
    args = parser.parse_args()
    from bench.protocol import RESULTS, ROOT

    codes = [ROOT] + ([args.base.resolve()] if args.base else [])
    results = []
    with tempfile.TemporaryDirectory(prefix="facegan-memory-") as tmp:
        work = Path(tmp)
        folder, cache = work / "faces", work / "cache"
        size_bytes = write_cache(folder, cache, args.n, args.image_size)
        print(f"{args.n} faces at {args.image_size} px: a {size_bytes / 2**20:.0f} MiB cache; "
              f"{args.steps} steps of {BATCH} images a process, tiny nets, CPU (gloo, 1 thread each)")
        print(f"{'facegan':>12} {'procs':>5} {'rank':>4} {'peak RSS':>10} {'peak private':>13} {'peak PSS':>11}")
        for code in codes:
            for procs in sorted({1, args.procs}):
                for row in measure(procs, code, folder, cache, args.image_size, args.steps, work):
                    name = "this" if code == ROOT else str(code)
                    results.append({"facegan": name, "procs": procs, **row})
                    print(f"{name:>12} {procs:5d} {row['rank']:4d} {row['peak_rss'] / 2**20:7.0f} MiB "
                          f"{row['peak_private'] / 2**20:9.0f} MiB {row['peak_pss'] / 2**20:7.0f} MiB")
    out = RESULTS / "shared_memory.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"n": args.n, "image_size": args.image_size, "cache_bytes": size_bytes,
                               "steps": args.steps, "batch": BATCH, "rows": results}, indent=2) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":  # torchrun runs this file in each process
        sys.exit(worker(Path(sys.argv[2]), sys.argv[sys.argv.index("--") + 1:]))
    main()
