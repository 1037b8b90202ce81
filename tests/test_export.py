import json

import pytest
import torch

from facegan.checkpoint import CheckpointError
from facegan.cli import main
from facegan.export import generator_from_checkpoint, load_exported
from facegan.train import train


@pytest.fixture(params=["none", "tone"], ids=["plain", "conditional"])
def checkpoint(tiny_cfg, request):
    cfg = tiny_cfg(condition=request.param)
    train(cfg, progress=False)
    return cfg.run_dir / "checkpoints/latest.pt"


def test_export_round_trips_the_generator(checkpoint, tmp_path, capsys):
    out = tmp_path / "g.safetensors"
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    original, cfg = generator_from_checkpoint(checkpoint)
    exported = load_exported(out)
    z = torch.randn(4, cfg.z_size)
    assert torch.equal(original(z), exported(z))
    assert json.loads(out.with_suffix(".json").read_text())["image_size"] == cfg.image_size


def test_export_is_data_only(checkpoint, tmp_path):
    out = tmp_path / "g.safetensors"
    main(["export", "--checkpoint", str(checkpoint), "--out", str(out)])
    raw = out.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + header_len])  # safetensors: a JSON header, then raw tensor bytes
    assert header["__metadata__"]["format"] == "facegan-generator-v1"
    assert b"\x80\x04" not in raw[:8 + header_len]  # no pickle stream in the header


def test_foreign_or_corrupt_files_are_refused(tmp_path):
    bad = tmp_path / "g.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_exported(bad)
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not a facegan generator"):
        load_exported(tmp_path / "other.safetensors")


def test_the_readme_snippet_samples_an_export_with_torch_alone(checkpoint, tmp_path):
    import re
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    snippet = re.search(r"<!-- export-snippet -->\n```python\n(.*?)```", readme, re.S).group(1)
    assert len(snippet.strip().splitlines()) == 3
    main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "g.safetensors")])
    _, cfg = generator_from_checkpoint(checkpoint)
    snippet = snippet.replace("torch.randn(16, 100)", f"torch.randn(16, {cfg.z_size})")
    check = (snippet + "\nassert faces.shape == (16, 3, %d, %d), faces.shape\n"
             "assert 0 <= float(faces.min()) and float(faces.max()) <= 1\n"
             "import importlib.util; assert importlib.util.find_spec('facegan') is None\n"
             % (cfg.image_size, cfg.image_size))
    # -I: no cwd, PYTHONPATH or user site on sys.path, so facegan cannot be imported
    done = subprocess.run([sys.executable, "-I", "-c", check], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_program_export_matches_the_generator_at_any_batch_size(checkpoint, tmp_path):
    main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "g.safetensors")])
    program = torch.export.load(str(tmp_path / "g.pt2")).module()
    G, cfg = generator_from_checkpoint(checkpoint)
    for batch in (1, 7):
        z = torch.randn(batch, cfg.z_size)
        assert torch.allclose(program(z), G(z), atol=1e-6)
