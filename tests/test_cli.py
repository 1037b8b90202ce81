import json
from dataclasses import fields

import pytest

from facegan.commands.cli import build_parser, main
from facegan.config import TrainConfig


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
