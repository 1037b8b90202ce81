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
import os
from pathlib import Path

import torch

from ..checkpoint import CheckpointError, load_checkpoint, load_weights
from ..config import TrainConfig
from ..errors import ConfigError
from ..nets.models import Generator, build_generator
from ..utils import jsonfile
from ..utils.atomic import atomic_write_bytes, atomic_write_text

FORMAT = "facegan-generator-v1"


def generator_from_checkpoint(path: str | Path, device: str | torch.device = "cpu"):
    """G from a training checkpoint (its EMA weights when present), in eval mode, and its config."""
    ckpt = load_checkpoint(path, require=("config", "G"))
    cfg = config_from(ckpt["config"], path)
    G = build_generator(cfg)
    ema = ckpt.get("G_ema")
    load_weights(G, ckpt["G"] if ema is None else ema, path, "generator weights")
    return G.to(device).eval(), cfg


def config_from(saved, path: str | Path) -> TrainConfig:
    """The TrainConfig a checkpoint or export carries, or a one-line CheckpointError naming the file."""
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: its config is a {type(saved).__name__}, not an object of config "
                              f"fields; use a file written by facegan train or facegan export")
    try:
        return TrainConfig.from_dict(saved)
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"{path}: its config is not usable ({e}); use a file written by facegan train "
                              f"or facegan export") from None


def export_paths(out: str | Path, checkpoint: str | Path | None = None) -> tuple[Path, Path, Path]:
    """The three files an export writes: NAME.safetensors, NAME.json and NAME.pt2; refuses an
    out that is not NAME.safetensors, or names that would overwrite the checkpoint."""
    out = Path(out)
    usage = f"--out {out}: name the export NAME.safetensors (NAME.json and NAME.pt2 are written beside it)"
    if out.name in ("", ".", ".."):
        raise ConfigError(usage)
    paths = out, out.with_suffix(".json"), out.with_suffix(".pt2")
    for path in paths if checkpoint is not None else ():
        if _same_file(path, Path(checkpoint)):
            raise ConfigError(f"--out {out} would overwrite the checkpoint {checkpoint} with {path.name}; "
                              f"choose an --out NAME.safetensors in another name or folder")
    if out.suffix != ".safetensors":
        hint = "" if out.name.startswith(".") and not out.suffix else f", e.g. --out {out.with_suffix('.safetensors')}"
        raise ConfigError(usage + hint)
    return paths


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def export_generator(checkpoint: str | Path, out: str | Path) -> Path:
    """Write NAME.safetensors, NAME.json and NAME.pt2 (see the module docstring); refuses, before
    writing anything, an --out that is not NAME.safetensors or would overwrite the checkpoint."""
    from safetensors.torch import save

    paths = export_paths(out, checkpoint)
    G, cfg = generator_from_checkpoint(checkpoint)
    config = json.dumps(cfg.to_dict())
    tensors = {k: v.contiguous() for k, v in G.state_dict().items()}
    out, config_path, program_path = paths
    atomic_write_bytes(out, save(tensors, metadata={"format": FORMAT, "facegan_config": config}))
    atomic_write_text(config_path, json.dumps(cfg.to_dict(), indent=2) + "\n")
    export_program(G, program_path)
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
        raise CheckpointError(f"{path} is not a facegan generator export (format {FORMAT} expected); "
                              f"export it with `python -m facegan export`")
    fix = "export it again with `python -m facegan export`"
    if "facegan_config" not in meta:
        raise CheckpointError(f"{path} has no facegan_config in its metadata; {fix}")
    try:
        saved = jsonfile.loads(meta["facegan_config"])
    except jsonfile.BadJSON as e:
        raise CheckpointError(f"{path}: its facegan_config metadata is {e}; {fix}") from None
    G = build_generator(config_from(saved, path))
    load_weights(G, tensors, path, "generator weights", fix)
    return G.to(device).eval()


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> Generator:
    """A Generator in eval mode from either a training checkpoint (.pt, EMA weights when present)
    or an exported .safetensors file: every command that only samples accepts both."""
    if Path(path).suffix == ".safetensors":
        return load_exported(path, device)
    return generator_from_checkpoint(path, device)[0]
