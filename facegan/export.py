"""Sharing a generator: weights as safetensors (plain tensors, nothing that can run code) + config.

    g.safetensors   the generator's state_dict (EMA weights when the run has them); the
                    TrainConfig rides along in the file's metadata under "facegan_config"
    g.json          the same config, readable, beside it
    g.pt2           the same generator as a torch.export program (a JSON graph and raw
                    weights), so someone without facegan can sample it with torch alone:

        import torch
        G = torch.export.load("g.pt2").module()
        faces = (G(torch.randn(16, 100)) + 1) / 2  # 16 RGB faces, (16, 3, 64, 64), in [0, 1]
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .atomic import atomic_write_bytes, atomic_write_text
from .checkpoint import CheckpointError, load_checkpoint
from .config import TrainConfig
from .models import Generator, build_generator

FORMAT = "facegan-generator-v1"


def generator_from_checkpoint(path: str | Path, device: str | torch.device = "cpu"):
    """G from a training checkpoint (its EMA weights when present), in eval mode, and its config."""
    ckpt = load_checkpoint(path)
    cfg = TrainConfig.from_dict(ckpt["config"])
    G = build_generator(cfg)
    G.load_state_dict(ckpt["G_ema"] or ckpt["G"])
    return G.to(device).eval(), cfg


def export_generator(checkpoint: str | Path, out: str | Path) -> Path:
    from safetensors.torch import save

    G, cfg = generator_from_checkpoint(checkpoint)
    config = json.dumps(cfg.to_dict())
    tensors = {k: v.contiguous() for k, v in G.state_dict().items()}
    out = Path(out)
    atomic_write_bytes(out, save(tensors, metadata={"format": FORMAT, "facegan_config": config}))
    atomic_write_text(out.with_suffix(".json"), json.dumps(cfg.to_dict(), indent=2) + "\n")
    export_program(G, out.with_suffix(".pt2"))
    return out


def export_program(G: Generator, path: Path) -> None:
    """G as a torch.export program with a free batch size, written atomically."""
    import io

    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(G.eval(), (torch.randn(2, G.z_size),), dynamic_shapes=({0: batch},))
    buf = io.BytesIO()
    torch.export.save(program, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_exported(path: str | Path, device: str | torch.device = "cpu") -> Generator:
    """A Generator, in eval mode, from an exported .safetensors file."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file ({e}); export it again "
                              f"with `python -m facegan export`") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a facegan generator export (format {FORMAT} expected)")
    G = build_generator(TrainConfig.from_dict(json.loads(meta["facegan_config"])))
    G.load_state_dict(tensors)
    return G.to(device).eval()


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> Generator:
    """A Generator in eval mode from either a training checkpoint (.pt, EMA weights when present)
    or an exported .safetensors file: every command that only samples accepts both."""
    if Path(path).suffix == ".safetensors":
        return load_exported(path, device)
    return generator_from_checkpoint(path, device)[0]
