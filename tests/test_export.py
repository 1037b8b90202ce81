import json

import pytest
import torch

from facegan.checkpoint import CheckpointError
from facegan.cli import main
from facegan.export import generator_from_checkpoint, load_exported
from facegan.train import train


@pytest.fixture
def checkpoint(tiny_cfg):
    cfg = tiny_cfg()
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
