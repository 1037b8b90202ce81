import json

import pytest
import torch

from facegan.checkpoint import CheckpointError
from facegan.commands.cli import main
from facegan.generate.export import generator_from_checkpoint, load_exported
from facegan.training.loop import train
from tests.conftest import ROOT


@pytest.fixture(params=[{}, {"condition": "tone"}, {"sle": True}], ids=["plain", "conditional", "skip-excited"])
def checkpoint(tiny_cfg, request):
    cfg = tiny_cfg(**request.param)
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


def test_the_docs_snippet_samples_an_export_with_torch_alone(checkpoint, tmp_path):
    import re
    import subprocess
    import sys

    doc = (ROOT / "docs/generating.md").read_text()  # "Sharing weights"
    snippet = re.search(r"<!-- export-snippet -->\n```python\n(.*?)```", doc, re.S).group(1)
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


def test_files_written_before_the_label_smoothing_rename_still_load(tiny_cfg, tmp_path):
    # real_target was called label_smoothing, and num_workers existed: old config.json files,
    # checkpoints and exports carry those keys and must still resume, sample and load.
    from safetensors.torch import save

    from facegan.checkpoint import load_checkpoint, save_checkpoint

    def aged(config: dict) -> dict:
        old = {("label_smoothing" if k == "real_target" else k): v for k, v in config.items()}
        return {**old, "num_workers": 0}

    cfg = tiny_cfg(real_target=0.9)
    train(cfg, progress=False)
    latest = cfg.run_dir / "checkpoints/latest.pt"
    ckpt = load_checkpoint(latest)
    save_checkpoint(latest, {**ckpt, "config": aged(ckpt["config"])})
    (cfg.run_dir / "config.json").write_text(json.dumps(aged(cfg.to_dict())))
    assert main(["train", "--out", str(cfg.run_dir), "--resume", "--epochs", "2", "--quiet"]) == 0
    assert load_checkpoint(latest)["config"]["real_target"] == 0.9  # resumed, saved in today's keys
    G, loaded = generator_from_checkpoint(latest)
    assert loaded.real_target == 0.9

    old_export = tmp_path / "old.safetensors"
    tensors = {k: v.contiguous() for k, v in G.state_dict().items()}
    old_export.write_bytes(save(tensors, metadata={"format": "facegan-generator-v1",
                                                   "facegan_config": json.dumps(aged(loaded.to_dict()))}))
    z = torch.randn(2, loaded.z_size)
    assert torch.equal(load_exported(old_export)(z), G(z))


def refused(capsys, argv: list, names) -> str:
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("facegan: error: ") and str(names) in err, err
    return err


@pytest.mark.parametrize("name", ["g.json", "g.pt2", "g", "g.pt"])
def test_export_needs_a_safetensors_out_and_writes_nothing_else(tiny_cfg, tmp_path, capsys, name):
    # --out g.json wrote the weights to g.json, then overwrote them with the config.
    train(tiny_cfg(), progress=False)
    checkpoint = tiny_cfg().run_dir / "checkpoints/latest.pt"
    out = tmp_path / "exports" / name
    err = refused(capsys, ["export", "--checkpoint", checkpoint, "--out", out], out)
    assert "NAME.safetensors" in err
    assert not (tmp_path / "exports").exists()


@pytest.mark.parametrize("clash", ["out-is-checkpoint", "out-is-the-pt", "json-is-checkpoint", "pt2-is-checkpoint",
                                   "symlink"])
def test_export_never_overwrites_its_checkpoint(tiny_cfg, tmp_path, capsys, clash):
    train(tiny_cfg(), progress=False)
    latest = tiny_cfg().run_dir / "checkpoints/latest.pt"
    # --out ck.pt used to replace the training checkpoint with a safetensors file.
    out = tmp_path / ("g.pt" if clash == "out-is-the-pt" else "g.safetensors")
    checkpoint = {"out-is-checkpoint": out, "out-is-the-pt": out, "json-is-checkpoint": tmp_path / "g.json",
                  "pt2-is-checkpoint": tmp_path / "g.pt2", "symlink": latest}[clash]
    if clash == "symlink":
        out.symlink_to(latest)
    else:
        checkpoint.write_bytes(latest.read_bytes())
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    err = refused(capsys, ["export", "--checkpoint", checkpoint, "--out", out], checkpoint)
    assert "would overwrite the checkpoint" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert checkpoint.read_bytes() == latest.read_bytes()  # still the training checkpoint


def test_the_residual_generator_exports_and_samples(tiny_cfg, tmp_path, capsys):
    cfg = tiny_cfg(arch="resnet", d_norm="none", loss="rpgan", r1_gamma=1.0, r2_gamma=1.0, mbstd=True)
    train(cfg, progress=False)
    checkpoint = cfg.run_dir / "checkpoints/latest.pt"
    out = tmp_path / "g.safetensors"
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    original, _ = generator_from_checkpoint(checkpoint)
    z = torch.randn(3, cfg.z_size)
    assert torch.equal(original(z), load_exported(out)(z))
    program = torch.export.load(str(out.with_suffix(".pt2"))).module()
    assert torch.allclose(program(z), original(z), atol=1e-6)
    assert main(["sample", "--checkpoint", str(out), "--n", "4", "--out", str(tmp_path / "faces")]) == 0
    assert len(list((tmp_path / "faces").glob("*.png"))) == 4
