"""Snapshot files: one dict holding everything needed to continue a run exactly.

Its keys are built by `RunState.snapshot` and listed in facegan/training/resume.py. Written
atomically (temp file + os.replace) and loaded with `weights_only=True`, so a checkpoint
from elsewhere cannot run code.
"""
from __future__ import annotations

import pickle
import random
import re
import shutil
import warnings
from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError
from .utils.atomic import atomic_open

FORMAT = "facegan-checkpoint-v1"


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DDP or torch.compile wrappers, so saved keys carry no prefix."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path | str, snapshot: dict) -> None:
    try:
        with atomic_open(path, "wb") as f:
            torch.save({"format": FORMAT, **snapshot}, f)
    except (OSError, RuntimeError) as e:
        # A full disk reaches torch.save's own writer as RuntimeError ("unexpected pos"), not OSError.
        raise CheckpointError(f"could not write {path} ({_write_failure(path, e)}); the previous checkpoint "
                              f"there is intact: free disk space or choose another --out, then --resume") from None


def _write_failure(path: Path | str, error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    try:
        if shutil.disk_usage(Path(path).parent).free < 16 * 2**20:
            return "No space left on device"
    except OSError:
        pass
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return first_line[:120]


def load_checkpoint(path: Path | str, require: tuple[str, ...] = ("config", "G")) -> dict:
    """The checkpoint dict at path, or a one-line CheckpointError naming the file and the fix.

    Every use needs `require` (sampling: the config and G); a resume checks the rest itself.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; train first or pass the path of a .pt file")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles; the error below says it all
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError as e:
        raise CheckpointError(f"could not read {path} ({e.strerror}); check the file's permissions") from None
    except Exception as e:  # torch raises many types for truncated or foreign files
        raise CheckpointError(f"{path} is not a readable facegan checkpoint: {_unreadable_because(e)}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a facegan checkpoint (format {FORMAT} expected); "
                              f"pass a .pt file that facegan train wrote, e.g. a run's checkpoints/latest.pt")
    check_keys(ckpt, require, path)
    return ckpt


def _unreadable_because(e: Exception) -> str:
    """Why torch could not load a file, and the fix, as one complete clause (never torch's paragraph)."""
    if isinstance(e, pickle.UnpicklingError):
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f"a Python object ({found.group(1)})" if found else "data"
        return (f"it was saved by other code and holds {what} that facegan refuses to unpickle, since "
                f"loading it could run code; pass a checkpoint that facegan train wrote (a run's "
                f"checkpoints/latest.pt)")
    return ("it is truncated or corrupt; use another snapshot from the run's checkpoints/ folder "
            "(epoch_NNN.pt), or train again")


def check_keys(ckpt: dict, keys, path: Path | str, purpose: str = "") -> None:
    """Refuse a checkpoint that lacks (or holds None for) any of keys; `config` must be a dict."""
    missing = [k for k in keys if ckpt.get(k) is None]
    if missing:
        raise CheckpointError(f"{path} is a facegan checkpoint without {', '.join(missing)}"
                              f"{' (needed ' + purpose + ')' if purpose else ''}; it was not written whole "
                              f"by facegan train: use another snapshot from the run's checkpoints/ folder")
    if "config" in keys and not isinstance(ckpt["config"], dict):
        raise CheckpointError(f"{path}: its config is a {type(ckpt['config']).__name__}, not a dict of "
                              f"config fields; use a checkpoint that facegan train wrote")


def load_weights(target, state, path: Path | str, what: str = "weights",
                 fix: str = "use a checkpoint written by facegan train") -> None:
    """target.load_state_dict(state), or a one-line CheckpointError naming the file and the fix."""
    try:
        target.load_state_dict(state)
    except CheckpointError:
        raise
    except (RuntimeError, ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
        verb = "do" if what.endswith("s") else "does"
        raise CheckpointError(f"{path}: its {what} {verb} not match its config ({mismatch(e)}); {fix}") from None


def mismatch(e: Exception) -> str:
    """A short, complete description of a load_state_dict failure."""
    text = str(e)
    size = re.search(r"size mismatch for ([\w.]+)", text)
    if size:
        more = text.count("size mismatch for ") - 1
        return f"size mismatch for {size.group(1)}" + (f" and {more} more" if more else "")
    for label, pattern in (("missing", r"Missing key\(s\) in state_dict: (.*?)\.?\s*$"),
                           ("unexpected", r"Unexpected key\(s\) in state_dict: (.*?)\.?\s*$")):
        found = re.search(pattern, text, re.M)
        if found:
            names = re.findall(r'"([^"]+)"', found.group(1))
            if names:
                return f"{label} {names[0]}" + (f" and {len(names) - 1} more" if len(names) > 1 else "")
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    return line if line and len(line) <= 100 else type(e).__name__
