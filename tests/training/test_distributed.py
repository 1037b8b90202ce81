"""Data-parallel training on CPU: 2 processes with gloo, as torchrun runs them."""
import json
import os
import socket
import subprocess
import sys

import torch
import torch.multiprocessing as mp

from facegan.checkpoint import load_checkpoint
from facegan.config import TrainConfig, preset
from facegan.nets.models import build_models
from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world_size: int, port: int, cfg_dict: dict, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    from facegan.training.loop import train
    summary = train(TrainConfig.from_dict(cfg_dict), progress=False)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(summary, f)


def test_two_ranks_train_in_lockstep(tmp_path):
    cfg = preset("tiny", out=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"), synthetic_n=128)
    mp.spawn(_rank, args=(2, free_port(), cfg.to_dict(), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["weights_sha1"] == ranks[1]["weights_sha1"]  # DDP kept the replicas identical
    assert ranks[0]["steps"] == 128 // 2 // 16  # each rank reads its own half of the data
    assert ranks[0]["images_seen"] == 128
    ckpt = load_checkpoint(tmp_path / "run/checkpoints/latest.pt")  # loads in one process
    D, G = build_models(cfg)
    G.load_state_dict(ckpt["G"])
    D.load_state_dict(ckpt["D"])
    rows = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, ranks[0]["steps"] + 1))  # rank 0 alone wrote
    assert all(abs(r["d_loss"]) < 1e3 and abs(r["g_loss"]) < 1e3 for r in rows)


def test_torchrun_command_trains_and_resumes(tmp_path):
    run = tmp_path / "run"
    common = ["--out", str(run), "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    for extra in (["--preset", "tiny", "--synthetic-n", "128", "--epochs", "1"], ["--resume", "--epochs", "2"]):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               f"--master_port={free_port()}", "-m", "facegan", "train", *extra, *common]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert done.returncode == 0, done.stderr[-2000:]
    assert load_checkpoint(run / "checkpoints/latest.pt")["epoch"] == 2
    assert "DDP over 2 processes (gloo)" in done.stdout
