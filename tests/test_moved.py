"""What facegan 0.1 users have keeps working: its import paths (with a DeprecationWarning naming
the new home) and the files it wrote (tests/fixtures/v0.1.0: a tiny run's checkpoint, config.json,
metrics.jsonl and train_samples.pkl, its safetensors export, and what its G drew)."""
import importlib
import json
import shutil
import sys
import warnings
from pathlib import Path

import pytest
import torch

import facegan
from facegan import errors
from facegan.config import TrainConfig
from facegan.moved import MOVED

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "v0.1.0"


def import_old(name: str):
    """Import facegan.NAME afresh (as a user's old script would) and return it with its warnings."""
    sys.modules.pop(f"facegan.{name}", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(f"facegan.{name}")
    return module, [w for w in caught if issubclass(w.category, DeprecationWarning)]


@pytest.mark.parametrize("old", sorted(MOVED))
def test_each_old_path_imports_with_a_warning_naming_its_new_home(old):
    module, caught = import_old(old)
    assert len(caught) == 1, [str(w.message) for w in caught]
    message = str(caught[0].message)
    homes = [importlib.import_module(f"facegan.{home}") for home in MOVED[old]]
    assert all(f"facegan.{home}" in message for home in MOVED[old]), message
    assert caught[0].filename == __file__, "the warning should point at the importing line"
    # Every public name the new homes define is reachable through the old path, as the same object.
    for home in homes:
        for name in (n for n in vars(home) if not n.startswith("_")):
            assert getattr(module, name) is getattr(home, name)


def test_old_from_imports_give_the_same_objects():
    sys.modules.pop("facegan.models", None)
    with pytest.warns(DeprecationWarning, match=r"facegan\.models moved to facegan\.nets\.models"):
        from facegan.models import Generator
    from facegan.nets.models import Generator as moved_here
    assert Generator is moved_here
    with pytest.warns(DeprecationWarning, match=r"facegan\.data moved to facegan\.data\.images"):
        from facegan.data import scale
    from facegan.data.images import scale as scale_here
    assert scale is scale_here


def test_an_unknown_name_of_an_old_module_is_an_attribute_error():
    module, _ = import_old("sample")
    with pytest.raises(AttributeError, match="no_such_name"):
        module.no_such_name  # noqa: B018


def test_old_facegan_train_module_exports_what_it_did_and_stays_callable(tiny_cfg):
    module, _ = import_old("train")
    for name in ("train", "train_step", "make_optimizers", "check_resumable", "weights_fingerprint",
                 "TrainingError", "RunInterrupted"):
        assert getattr(module, name) is not None, name
    # `import facegan.train` binds the module over the package attribute; it must still train.
    summary = facegan.train(tiny_cfg(), progress=False, log=lambda *a: None)
    assert summary["epochs"] == 1


def test_the_public_api_is_importable_from_the_package():
    from facegan import (
        Discriminator,
        Generator,
        TrainConfig,
        d_loss,
        fake_loss,
        g_loss,
        load_generator,
        preset,
        real_loss,
        scale,
        train_step,
        weights_init_normal,
    )
    assert TrainConfig is type(preset("tiny"))
    G = Generator(z_size=16, conv_dim=8, image_size=32)
    G.apply(weights_init_normal)
    assert G(torch.zeros(2, 16)).shape == (2, 3, 32, 32)
    assert Discriminator(conv_dim=8, image_size=32)(scale(torch.rand(2, 3, 32, 32))).shape == (2, 1)
    assert callable(train_step) and callable(load_generator)
    assert all(callable(f) for f in (d_loss, g_loss, real_loss, fake_loss))
    assert set(facegan.__all__) <= set(dir(facegan)) | set(facegan._LAZY)


@pytest.mark.parametrize("cls", [errors.ConfigError, errors.DataError, errors.RunFolderError, errors.CheckpointError,
                                 errors.MetricsError, errors.TrainingError, errors.OutputError])
def test_every_user_error_is_a_facegan_error_and_keeps_its_builtin_base(cls):
    assert issubclass(cls, errors.FaceganError)
    builtin = {errors.OutputError: OSError, errors.CheckpointError: RuntimeError, errors.MetricsError: RuntimeError,
               errors.TrainingError: RuntimeError}.get(cls, ValueError)
    assert issubclass(cls, builtin)


# ---------------------------------------------------------------- files written by facegan 0.1.0

def test_a_0_1_config_json_loads():
    cfg = TrainConfig.from_dict(json.loads((FIXTURES / "run" / "config.json").read_text()))
    assert (cfg.image_size, cfg.conv_dim, cfg.z_size, cfg.name) == (32, 8, 16, "tiny")


@pytest.mark.parametrize("source", ["run/checkpoints/latest.pt", "g.safetensors"])
def test_a_0_1_checkpoint_and_export_draw_what_they_drew(source):
    from facegan.generate.export import load_generator

    expected = torch.load(FIXTURES / "expected.pt", weights_only=True)
    G = load_generator(FIXTURES / source).eval()
    with torch.no_grad():
        out = G(expected["z"])
    # Same weights, same nets: equal up to the CPU's kernel rounding.
    torch.testing.assert_close(out, expected["from_checkpoint"], atol=1e-4, rtol=0)


def test_a_0_1_run_resumes_and_continues(tmp_path, monkeypatch):
    from facegan.training.loop import train

    monkeypatch.chdir(tmp_path)  # the saved config caches the synthetic faces under data/cache
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "run", run)
    saved = json.loads((run / "config.json").read_text())
    cfg = TrainConfig.from_dict({**saved, "out": str(run), "epochs": 2})
    summary = train(cfg, resume=True, progress=False, log=lambda *a: None)
    assert (summary["epochs"], summary["steps"], summary["images_seen"]) == (2, 8, 128)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "d_loss" in r] == list(range(1, 9))

    # Where this machine computes 0.1's first epoch bit for bit, the resumed run is the
    # uninterrupted one: nothing the restructure touched changed the numbers.
    train(TrainConfig.from_dict({**saved, "out": str(tmp_path / "fresh1")}), progress=False, log=lambda *a: None)
    old = torch.load(FIXTURES / "run" / "checkpoints" / "latest.pt", weights_only=True)
    new = torch.load(tmp_path / "fresh1" / "checkpoints" / "latest.pt", weights_only=True)
    if not all(torch.equal(old["G"][k], new["G"][k]) for k in old["G"]):
        pytest.skip("this CPU rounds the first epoch differently from the one that wrote the fixture")
    whole = train(TrainConfig.from_dict({**saved, "out": str(tmp_path / "fresh2"), "epochs": 2}),
                  progress=False, log=lambda *a: None)
    assert whole["weights_sha1"] == summary["weights_sha1"]


def test_the_changelog_lists_every_moved_path_with_its_homes():
    changelog = (FIXTURES.parents[2] / "CHANGELOG.md").read_text(encoding="utf-8")
    for old, homes in MOVED.items():
        row = f"| `facegan.{old}` | {', '.join(f'`facegan.{h}`' for h in homes)} |"
        assert row in changelog, f"CHANGELOG.md lacks the row {row}"
