"""Well-formed but wrong files (issue 18): every command ends in one line naming the file and the fix."""
import json
import shutil

import pytest
import torch

from facegan.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from facegan.commands.cli import main
from facegan.config import preset
from facegan.generate.export import generator_from_checkpoint, load_exported
from facegan.training.loop import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished one-epoch tiny run, trained once for the module; tests copy it."""
    root = tmp_path_factory.mktemp("trained")
    cfg = preset("tiny", out=str(root / "run"), cache_dir=str(root / "cache"))
    train(cfg, progress=False)
    return cfg.run_dir


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the trained run folder, free to spoil."""
    return shutil.copytree(trained, tmp_path / "run")


def one_line_error(capsys, argv, path) -> str:
    """Runs the CLI, expecting exit code 1 and one stderr line `facegan: error: ...` naming path."""
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("facegan: error: "), err
    assert str(path) in err, err
    return err.strip()


def rewrite(path, **changes):
    """The checkpoint at path with keys replaced (a value of ... deletes the key)."""
    ckpt = load_checkpoint(path)
    ckpt.pop("format")
    for key, value in changes.items():
        if value is ...:
            ckpt.pop(key)
        else:
            ckpt[key] = value
    save_checkpoint(path, ckpt)


def commands(run, ckpt, tmp_path):
    return {"sample": ["sample", "--checkpoint", ckpt, "--n", 2, "--out", tmp_path / "s.png"],
            "export": ["export", "--checkpoint", ckpt, "--out", tmp_path / "g.safetensors"],
            "evaluate": ["evaluate", "--checkpoint", ckpt, "--data-dir", tmp_path, "--n", 4,
                         "--cache-dir", tmp_path / "cache"],
            "resume": ["train", "--out", run, "--resume", "--epochs", 2, "--quiet"]}


# ---------------------------------------------------------------- missing keys

@pytest.mark.parametrize("key", ["config", "G"])
@pytest.mark.parametrize("command", ["sample", "export", "evaluate", "resume"])
def test_a_checkpoint_missing_a_key_is_one_line(run, tmp_path, capsys, key, command):
    ckpt = run / "checkpoints/latest.pt"
    rewrite(ckpt, **{key: ...})
    err = one_line_error(capsys, commands(run, ckpt, tmp_path)[command], ckpt)
    assert key in err and "checkpoints/ folder" in err
    assert not (tmp_path / "g.safetensors").exists() and not (tmp_path / "s.png").exists()


@pytest.mark.parametrize("key", ["D", "opt_g", "rng", "fixed_z", "epoch"])
def test_resume_needs_every_key_but_the_optional_ones(run, capsys, key):
    ckpt = run / "checkpoints/latest.pt"
    metrics = (run / "metrics.jsonl").read_bytes()
    rewrite(ckpt, **{key: ...})
    err = one_line_error(capsys, ["train", "--out", run, "--resume", "--epochs", 2, "--quiet"], ckpt)
    assert f"without {key}" in err
    assert (run / "metrics.jsonl").read_bytes() == metrics  # nothing was touched


def test_resume_accepts_an_older_checkpoint_without_the_optional_keys(run):
    older = ("batch", "G_ema", "schedule", "augmenter", "lecam", "monitor")  # added over facegan's versions
    rewrite(run / "checkpoints/latest.pt", **{key: ... for key in older})
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--quiet"]) == 0
    assert load_checkpoint(run / "checkpoints/latest.pt")["epoch"] == 2


def test_sampling_needs_no_g_ema(run):
    ckpt = run / "checkpoints/latest.pt"
    G = load_checkpoint(ckpt)["G"]
    rewrite(ckpt, G_ema=...)
    loaded, _ = generator_from_checkpoint(ckpt)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in G.items())


@pytest.mark.parametrize("config", [[1, 2], "tiny", {"image_size": "big"}, {"no_such_field": 1}],
                         ids=["list", "string", "bad-value", "unknown-key"])
def test_a_checkpoint_with_a_bad_config_is_one_line(run, tmp_path, capsys, config):
    ckpt = run / "checkpoints/latest.pt"
    rewrite(ckpt, config=config)
    err = one_line_error(capsys, ["sample", "--checkpoint", ckpt, "--n", 2, "--out", tmp_path / "s.png"], ckpt)
    assert "config" in err


# ---------------------------------------------------------------- weights that do not fit the config

def shrunk(state: dict) -> dict:
    key = next(k for k, v in state.items() if v.ndim == 4)
    return {**state, key: state[key][:, :1].clone()}


def test_sampling_weights_that_do_not_match_the_config_is_one_line(run, tmp_path, capsys):
    ckpt = run / "checkpoints/latest.pt"
    saved = load_checkpoint(ckpt)
    rewrite(ckpt, G=shrunk(saved["G"]), G_ema=None if saved["G_ema"] is None else shrunk(saved["G_ema"]))
    err = one_line_error(capsys, ["sample", "--checkpoint", ckpt, "--n", 2, "--out", tmp_path / "s.png"], ckpt)
    assert "do not match its config (size mismatch for " in err
    assert err.endswith("use a checkpoint written by facegan train")


def test_resuming_weights_that_do_not_match_the_config_is_one_line(run, capsys):
    ckpt = run / "checkpoints/latest.pt"
    rewrite(ckpt, D=shrunk(load_checkpoint(ckpt)["D"]))
    err = one_line_error(capsys, ["train", "--out", run, "--resume", "--epochs", 2, "--quiet"], ckpt)
    assert "D state does not match its config (size mismatch for " in err


def test_resuming_a_crafted_counter_or_latent_is_one_line(run, capsys):
    ckpt = run / "checkpoints/latest.pt"
    rewrite(ckpt, step="ten")
    one_line_error(capsys, ["train", "--out", run, "--resume", "--epochs", 2, "--quiet"], ckpt)
    rewrite(ckpt, step=4, fixed_z=torch.zeros(3))
    err = one_line_error(capsys, ["train", "--out", run, "--resume", "--epochs", 2, "--quiet"], ckpt)
    assert "fixed_z" in err


@pytest.mark.parametrize("samples", [[1, 2], {"saved": "1", "unsaved": torch.empty(0, dtype=torch.uint8)},
                                     {"saved": 0, "unsaved": torch.zeros(1, 2, 3)},
                                     {"saved": 0, "unsaved": torch.zeros(9, 4, 32, 32, 3, dtype=torch.uint8)}],
                         ids=["not-a-dict", "count-not-int", "not-images", "more-epochs-than-run"])
def test_resuming_a_crafted_samples_record_is_one_line(run, capsys, samples):
    ckpt = run / "checkpoints/latest.pt"
    rewrite(ckpt, samples=samples)
    err = one_line_error(capsys, ["train", "--out", run, "--resume", "--epochs", 2, "--quiet"], ckpt)
    assert "samples record" in err


# ---------------------------------------------------------------- unreadable checkpoints

class NotAllowed:
    """An object torch.load(weights_only=True) refuses to unpickle."""


@pytest.mark.parametrize("make", [
    lambda path: path.write_bytes(path.read_bytes()[:2000]),
    lambda path: torch.save({"format": "facegan-checkpoint-v1", "G": NotAllowed()}, path),
    lambda path: path.write_bytes(b"\x80\x04K\x01."),  # a plain pickle, not torch's format
], ids=["truncated", "refused-object", "foreign-pickle"])
def test_an_unreadable_checkpoint_gives_a_clean_message(run, tmp_path, capsys, make):
    ckpt = run / "checkpoints/latest.pt"
    make(ckpt)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(ckpt)
    message = str(e.value)
    assert "\n" not in message and str(ckpt) in message
    assert "WeightsUnpickler" not in message and "weights_only" not in message and "\x1b" not in message
    assert message.endswith(("checkpoints/latest.pt)", "or train again"))
    err = one_line_error(capsys, ["sample", "--checkpoint", ckpt, "--out", tmp_path / "s.png"], ckpt)
    assert err == f"facegan: error: {message}"


def test_a_refused_object_is_named(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"x": NotAllowed()}, path)
    with pytest.raises(CheckpointError, match=r"NotAllowed\) that facegan refuses to unpickle"):
        load_checkpoint(path)


# ---------------------------------------------------------------- crafted exports

def export_with(tmp_path, run, metadata: dict, tensors: dict | None = None):
    from safetensors.torch import save

    G, _ = generator_from_checkpoint(run / "checkpoints/latest.pt")
    tensors = tensors or {k: v.contiguous() for k, v in G.state_dict().items()}
    path = tmp_path / "crafted.safetensors"
    path.write_bytes(save(tensors, metadata=metadata))
    return path


@pytest.mark.parametrize("metadata", [
    {"format": "facegan-generator-v1"},
    {"format": "facegan-generator-v1", "facegan_config": "{not json"},
    {"format": "facegan-generator-v1", "facegan_config": "[1, 2]"},
    {"format": "facegan-generator-v1", "facegan_config": json.dumps({"z_size": -3})},
], ids=["no-config", "bad-json", "list", "invalid-value"])
def test_an_export_with_bad_metadata_is_one_line(run, tmp_path, capsys, metadata):
    path = export_with(tmp_path, run, metadata)
    with pytest.raises(CheckpointError, match="export"):
        load_exported(path)
    one_line_error(capsys, ["sample", "--checkpoint", path, "--n", 2, "--out", tmp_path / "s.png"], path)


def test_an_export_without_facegan_metadata_is_one_line(run, tmp_path, capsys):
    from safetensors.torch import save_file

    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    err = one_line_error(capsys, ["sample", "--checkpoint", path, "--out", tmp_path / "s.png"], path)
    assert err.endswith("`python -m facegan export`")


def test_an_export_whose_weights_do_not_match_its_config_is_one_line(run, tmp_path, capsys):
    G, cfg = generator_from_checkpoint(run / "checkpoints/latest.pt")
    tensors = shrunk({k: v.contiguous() for k, v in G.state_dict().items()})
    path = export_with(tmp_path, run, {"format": "facegan-generator-v1", "facegan_config": json.dumps(cfg.to_dict())},
                       tensors)
    err = one_line_error(capsys, ["sample", "--checkpoint", path, "--out", tmp_path / "s.png"], path)
    assert "size mismatch for " in err


# ---------------------------------------------------------------- a run folder's config.json

@pytest.mark.parametrize("text", ["[1, 2, 3]", "{not json", "42", '{"image_size": "big"}'],
                         ids=["list", "invalid-json", "number", "bad-value"])
def test_resume_with_a_broken_config_json_is_one_line(run, capsys, text):
    config = run / "config.json"
    config.write_text(text)
    one_line_error(capsys, ["train", "--out", run, "--resume", "--epochs", 2, "--quiet"], config)
    assert config.read_text() == text  # left for the user to repair
