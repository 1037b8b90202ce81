import json
from dataclasses import fields

import pytest

from facegan.commands.cli import build_parser, main
from facegan.config import PRESETS, TrainConfig


def test_help_lists_every_config_field(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for f in fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in out
    # Each flag names its TrainConfig default once, not also argparse's "not given" None.
    flat = " ".join(out.split())
    assert "(default: 0.0)" in flat.split("--tone-match FLOAT")[-1].split("--extra-layers")[0]
    assert "(default: None)" not in flat


def test_flags_are_typed_and_unknown_ones_rejected(capsys):
    args = build_parser().parse_args(["train", "--image-size", "32", "--no-hflip", "--lr-d", "1e-3"])
    assert (args.image_size, args.hflip, args.lr_d) == (32, False, 1e-3)
    with pytest.raises(SystemExit):
        main(["train", "--imag-size", "32"])
    with pytest.raises(SystemExit):
        main(["train", "--epochs", "two"])


@pytest.mark.parametrize("argv,field", [
    (["--image-size", "48"], "image_size"),
    (["--batch-size", "0"], "batch_size"),
    (["--data", "imagenet"], "data"),
    (["--data", "folder", "--data-dir", "/nonexistent/faces"], "/nonexistent/faces"),
])
def test_bad_values_get_one_line_errors(tmp_path, capsys, argv, field):
    assert main(["train", "--preset", "tiny", "--out", str(tmp_path / "r"), *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("facegan: error:") and field in err and "\n" not in err


@pytest.mark.parametrize("argv", [["train", "--preset", "huge"], ["train", "--epochs", "two"],
                                  ["train", "--imag-size", "32"], ["evaluate"]])
def test_unparsable_arguments_get_one_line_errors(capsys, argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.startswith("facegan: error:") and "\n" not in err


def test_train_resume_and_view(tmp_path, capsys):
    run = tmp_path / "run"
    common = ["--out", str(run), "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert main(["train", "--preset", "tiny", "--epochs", "1", *common]) == 0
    out = capsys.readouterr().out
    assert "epoch_001.png" in out and "losses.png" in out
    assert main(["train", "--resume", "--epochs", "2", *common]) == 0
    assert json.loads((run / "config.json").read_text())["epochs"] == 2
    assert (run / "samples/epoch_002.png").exists()
    # the run's own config (tiny) is the base on resume; changing the model is refused
    assert main(["train", "--resume", "--epochs", "3", "--conv-dim", "32", *common]) == 1
    assert "conv_dim" in capsys.readouterr().err
    assert main(["view", str(run), "--out", str(tmp_path / "v.png")]) == 0
    assert (tmp_path / "v.png").stat().st_size > 1000


def test_resume_without_a_run_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--resume", "--out", str(tmp_path / "nothing")]) == 1
    assert "config.json not found" in capsys.readouterr().err


# ---------------------------------------------------------------- --data DIR: a folder of images

def _config(argv):
    from facegan.commands.train import config_from_args

    return config_from_args(build_parser().parse_args(["train", *argv]))


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    from facegan.data.synthetic import write_face_folder

    return write_face_folder(tmp_path_factory.mktemp("data") / "faces", 32, size=32)


def test_data_dir_trains_on_a_folder_and_resumes_as_the_old_form_does(faces, tmp_path, capsys):
    from facegan.data.synthetic import write_face_folder

    run = tmp_path / "run"
    common = ["--out", str(run), "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert main(["train", "--preset", "tiny", "--data", str(faces), *common]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert (saved["data"], saved["data_dir"]) == ("folder", str(faces))
    assert (run / "samples/epoch_001.png").exists()
    # --resume with --data DIR is --resume with --data folder --data-dir DIR: the same folder is
    # accepted, another refused with the same message.
    assert main(["train", "--resume", "--epochs", "2", "--data", str(faces), *common]) == 0
    assert json.loads((run / "config.json").read_text())["epochs"] == 2
    capsys.readouterr()
    other = write_face_folder(tmp_path / "other", 32, size=32, seed=1)
    assert main(["train", "--resume", "--epochs", "3", "--data", str(other), *common]) == 1
    new_form = capsys.readouterr().err
    assert main(["train", "--resume", "--epochs", "3", "--data", "folder", "--data-dir", str(other), *common]) == 1
    old_form = capsys.readouterr().err
    assert old_form == new_form and "data_dir" in new_form, (old_form, new_form)


def test_the_old_forms_keep_working(faces):
    new = _config(["--preset", "tiny", "--data", str(faces)])
    assert new == _config(["--preset", "tiny", "--data", "folder", "--data-dir", str(faces)])
    assert (new.data, new.data_dir) == ("folder", str(faces))
    celeba = _config(["--data", "celeba", "--data-dir", str(faces)])
    assert (celeba.data, celeba.data_dir) == ("celeba", str(faces))


def test_a_dataset_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "celeba").mkdir()
    assert _config(["--data", "celeba"]).data == "celeba"
    assert (_config(["--data", "./celeba"]).data, _config(["--data", "./celeba"]).data_dir) == ("folder", "./celeba")


@pytest.mark.parametrize("make, wanted", [
    (lambda tmp: tmp / "faces", "no such folder"),
    (lambda tmp: (tmp / "faces.zip").write_bytes(b"PK") and tmp / "faces.zip", "not a folder"),
])
def test_data_that_is_no_folder_is_a_one_line_error(tmp_path, capsys, make, wanted):
    path = make(tmp_path)
    assert main(["train", "--preset", "tiny", "--out", str(tmp_path / "r"), "--data", str(path)]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err == (f"facegan: error: --data {path}: {wanted}; give a folder of .jpg/.png images, "
                   f"or one of synthetic, celeba")
    assert "Traceback" not in captured.out + captured.err and not (tmp_path / "r").exists()


def test_data_dir_twice_is_refused(faces, tmp_path, capsys):
    assert main(["train", "--preset", "tiny", "--out", str(tmp_path / "r"), "--data", str(faces),
                 "--data-dir", str(faces)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("facegan: error: --data") and "give the folder once" in err and "\n" not in err


def test_train_help_names_the_folder_form(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    flat = " ".join(capsys.readouterr().out.split())
    assert "--data NAME|DIR" in flat and "--data DIR, the same as --data folder --data-dir DIR" in flat
    assert "a dataset name wins over a folder of that name" in flat


# ---------------------------------------------------------------- --preset with --name

@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_takes_a_name(name):
    cfg = _config(["--preset", name, "--name", "mine"])
    assert cfg.name == "mine" and cfg.run_dir.name == "mine"


def test_a_named_preset_run_trains_in_its_own_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--preset", "tiny", "--name", "mine", "--cache-dir", str(tmp_path / "c"),
                 "--quiet"]) == 0
    assert (tmp_path / "runs/mine/checkpoints/latest.pt").is_file()
    assert json.loads((tmp_path / "runs/mine/config.json").read_text())["name"] == "mine"


# ---------------------------------------------------------------- a device this machine lacks

def _exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's refusals
        return e.code


def _lacking(device: str) -> bool:
    import torch

    if device == "mps":
        return not torch.backends.mps.is_available()
    return torch.cuda.device_count() <= 7  # cuda:7


@pytest.mark.parametrize("device", ["mps", "xpu", "cuda:7", "mps:1", "cuda:"])
def test_a_device_this_machine_lacks_is_one_line_in_every_command_that_takes_one(device, tmp_path, capsys,
                                                                                  monkeypatch):
    if device in ("mps", "cuda:7") and not _lacking(device):
        pytest.skip(f"this machine has {device}")
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    for argv in (["train", "--preset", "tiny", "--out", str(run), "--device", device],
                 ["train", "--preset", "tiny", "--name", "r", "--device", device],
                 ["evaluate", "--checkpoint", str(tmp_path / "c.pt"), "--data-dir", str(tmp_path), "--device", device]):
        assert _exit_code(argv) in (1, 2), argv
        err = capsys.readouterr().err
        assert err.startswith("facegan: error:") and err.count("\n") == 1, err
        assert "Traceback" not in err and ("device" in err or device in err), err
    assert list(tmp_path.iterdir()) == []  # nothing written: no run folder


@pytest.mark.parametrize("command", [["sample", "--checkpoint", "c.pt", "--out", "o"],
                                     ["interpolate", "--checkpoint", "c.pt", "--seeds", "1,2", "--out", "o"],
                                     ["export", "--checkpoint", "c.pt", "--out", "g.safetensors"],
                                     ["serve", "--checkpoint", "c.pt"], ["audit", "--data-dir", "d"],
                                     ["view", "run"], ["report", "run"]])
def test_commands_without_a_device_option_refuse_one_in_one_line(command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _exit_code([*command, "--device", "mps"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("facegan: error:") and err.count("\n") == 1 and "--device" in err
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- sizes that cannot fit

GIB = 2**30


@pytest.fixture
def ram(monkeypatch):
    """This machine's RAM as the estimates see it: 8 GiB, whatever the machine running the tests has."""
    import facegan.utils.accel as accel

    monkeypatch.setattr(accel, "ram_bytes", lambda: 8 * GIB)
    return 8 * GIB


@pytest.mark.parametrize("argv, said", [
    (["--conv-dim", "4096"], "needs about"), (["--image-size", "128", "--conv-dim", "2048"], "needs about"),
    (["--synthetic-n", "10000000"], "needs about"), (["--n-fixed", "10000", "--epochs", "1000"], "needs about"),
    (["--batch-size", "65536"], "needs about"),
    (["--z-size", "1000000000"], "z_size=1000000000: must lie in"),
    (["--n-fixed", "1000000000"], "n_fixed=1000000000: must lie in"),
    (["--synthetic-n", "1000000000"], "synthetic_n=1000000000: must lie in"),
    (["--ema-norm-samples", "1000000000"], "ema_norm_samples=1000000000: must lie in"),
    (["--conv-dim", "100000"], "conv_dim=100000: must lie in"),
])
def test_a_run_too_large_for_the_machine_is_one_line_before_anything_is_written(argv, said, ram, tmp_path,
                                                                                  capsys):
    assert main(["train", "--preset", "tiny", "--device", "cpu", "--out", str(tmp_path / "run"), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("facegan: error:") and err.count("\n") == 1 and said in err and "Traceback" not in err
    if said == "needs about":
        assert "GiB" in err and "this machine has 8.0 GiB" in err
    assert list(tmp_path.iterdir()) == []


def test_every_preset_fits_a_small_machine():
    from facegan.config import preset
    from facegan.training.step import estimate_memory

    for name in PRESETS:
        need = estimate_memory(preset(name))
        assert need.on_device + need.images < 8 * GIB, name


@pytest.mark.parametrize("argv", [["sample", "--n", "100000", "--upscale", "16", "--out", "grid.png"],
                                  ["interpolate", "--seeds", ",".join(map(str, range(300))), "--steps", "1000",
                                   "--out", "walk"]])
def test_images_too_large_for_the_machine_are_one_line_before_any_is_drawn(argv, tiny_checkpoint, ram, tmp_path,
                                                                           capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([argv[0], "--checkpoint", str(tiny_checkpoint), *argv[1:]]) == 1
    err = capsys.readouterr().err
    assert err.startswith("facegan: error:") and err.count("\n") == 1 and "Traceback" not in err
    assert "GiB of memory but this machine has 8.0 GiB of RAM" in err
    assert list(tmp_path.iterdir()) == []
    # A sensible request still runs.
    assert main(["sample", "--checkpoint", str(tiny_checkpoint), "--n", "4", "--out", "g.png"]) == 0


def test_a_walk_through_too_many_seeds_is_refused_at_parse_time(capsys):
    with pytest.raises(SystemExit):
        main(["interpolate", "--checkpoint", "c.pt", "--seeds", ",".join(map(str, range(10_001))), "--out", "w"])
    assert "at most 10000" in capsys.readouterr().err


# ---------------------------------------------------------------- Ctrl-C

@pytest.mark.parametrize("has_checkpoint", [False, True])
def test_an_interrupt_names_latest_pt_only_when_it_exists(has_checkpoint, tiny_checkpoint, tmp_path, capsys,
                                                          monkeypatch):
    import facegan.training.loop

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(facegan.training.loop, "train", interrupted)
    run = tiny_checkpoint.parents[1] if has_checkpoint else tmp_path / "fresh"
    flags = ["--resume"] if has_checkpoint else ["--preset", "tiny"]
    assert main(["train", *flags, "--out", str(run), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("facegan: interrupted")
    assert (str(run / "checkpoints/latest.pt") in err) == has_checkpoint
