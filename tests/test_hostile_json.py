"""JSON nested far past the parser's depth, in every file facegan reads as JSON: one line each
(Python's json raises RecursionError there), and the file is left as it was."""
import json

import numpy as np
import pytest
import torch

from facegan.checkpoint import CheckpointError
from facegan.commands.cli import main
from facegan.utils import jsonfile

DEEP = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a": ' * 100_000 + "1" + "}" * 100_000


def one_line(capsys, argv, code=1) -> str:
    capsys.readouterr()
    assert main([str(a) for a in argv]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("facegan: error: ") and "Traceback" not in err, err
    return err.strip()


@pytest.mark.parametrize("text", [DEEP, DEEP_OBJECT, "{not json", "\xff"], ids=["array", "object", "bad", "latin1"])
def test_the_reader_turns_every_failure_into_one_line(tmp_path, text):
    path = tmp_path / "f.json"
    path.write_bytes(text.encode("latin-1") if text == "\xff" else text.encode())
    with pytest.raises(jsonfile.BadJSON) as e:
        jsonfile.read_json(path)
    assert "\n" not in str(e.value) and isinstance(e.value, ValueError)
    with pytest.raises(jsonfile.BadJSON):
        jsonfile.loads(path.read_bytes())


def test_the_reader_reads_json(tmp_path):
    path = tmp_path / "f.json"
    path.write_text('{"a": [1, {"b": null}]}')
    assert jsonfile.read_json(path) == {"a": [1, {"b": None}]}


# ---------------------------------------------------------------- safetensors exports

def test_deep_facegan_config_metadata_in_an_export_is_one_line(tmp_path, capsys):
    from safetensors.torch import save

    from facegan.generate.export import load_exported

    path = tmp_path / "g.safetensors"
    path.write_bytes(save({"w": torch.zeros(2)}, metadata={"format": "facegan-generator-v1", "facegan_config": DEEP}))
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="nested too deeply") as e:
        load_exported(path)
    assert "\n" not in str(e.value)
    err = one_line(capsys, ["sample", "--checkpoint", path, "--n", 2, "--out", tmp_path / "s.png"])
    assert str(path) in err and "export it again" in err
    assert path.read_bytes() == before and not (tmp_path / "s.png").exists()


def test_a_deep_safetensors_header_is_one_line(tmp_path, capsys):
    header = ('{"__metadata__": {"format": "facegan-generator-v1"}, "w": ' + DEEP + "}").encode()
    path = tmp_path / "g.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    before = path.read_bytes()
    err = one_line(capsys, ["sample", "--checkpoint", path, "--n", 2, "--out", tmp_path / "s.png"])
    assert str(path) in err
    assert path.read_bytes() == before


# ---------------------------------------------------------------- sweep files

def test_a_deep_space_file_is_one_line(tmp_path, capsys):
    pytest.importorskip("optuna")
    space = tmp_path / "space.json"
    space.write_text(DEEP)
    err = one_line(capsys, ["sweep", "--out", tmp_path / "sweep", "--preset", "tiny", "--quiet", "--trials", 1,
                            "--space", space])
    assert f"--space {space} is JSON nested too deeply" in err
    assert space.read_text() == DEEP and not (tmp_path / "sweep" / "study.db").exists()


def test_a_deep_sweep_json_is_one_line_and_kept(tmp_path, capsys):
    pytest.importorskip("optuna")
    folder = tmp_path / "sweep"
    folder.mkdir()
    (folder / "sweep.json").write_text(DEEP_OBJECT)
    err = one_line(capsys, ["sweep", "--out", folder, "--preset", "tiny", "--quiet", "--trials", 1,
                            "--set", f"cache_dir={tmp_path / 'cache'}", "--param", "beta1=0.0,0.5"])
    assert f"{folder / 'sweep.json'} is unreadable" in err
    assert (folder / "sweep.json").read_text() == DEEP_OBJECT and not (folder / "study.db").exists()


# ---------------------------------------------------------------- a run's config.json, for report

def _run_folder(tmp_path, config_text: str):
    from facegan.generate.sample import save_train_samples
    from facegan.training.runfolder import MARKER, MARKER_TEXT

    run = tmp_path / "run"
    run.mkdir()
    (run / MARKER).write_text(MARKER_TEXT)  # a facegan run, as training marks it, whose config.json was damaged
    (run / "config.json").write_text(config_text)
    save_train_samples(run / "train_samples.pkl", [np.full((4, 8, 8, 3), 200, np.uint8)])
    (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "epoch": 1, "images": 8, "d_loss": 1.0, "d_acc": 0.5,
                                                   "g_loss": 2.0}) + "\n")
    return run


@pytest.mark.parametrize("text", [DEEP, DEEP_OBJECT, "{not json", "[1, 2]", "42"],
                         ids=["deep-array", "deep-object", "invalid", "list", "number"])
def test_report_with_a_malformed_config_json_keeps_the_rest_and_says_so(tmp_path, capsys, text):
    """The page is the run's losses, scores and samples; a broken config.json costs it only the
    config table, with a note in one line, rather than the whole report."""
    run = _run_folder(tmp_path, text)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert main(["report", str(run)]) == 0
    out, err = capsys.readouterr()
    notes = [line for line in out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and str(run / "config.json") in notes[0] and "config table" in notes[0], out
    assert err == ""
    page = (run / "report.html").read_text()
    assert "Latest samples" in page and "Losses" in page and "leaves out the config table" in page
    assert "<table>" not in page
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.name != "report.html"} == before


def test_report_with_a_good_config_json_shows_its_table(tmp_path, capsys):
    run = _run_folder(tmp_path, json.dumps({"name": "mine", "epochs": 3}))
    assert main(["report", str(run)]) == 0
    assert "note:" not in capsys.readouterr().out
    page = (run / "report.html").read_text()
    assert "<table>" in page and "facegan run: mine" in page


def test_a_config_name_that_is_not_text_does_not_break_the_report(tmp_path):
    from facegan.eval.report import render_report

    run = _run_folder(tmp_path, json.dumps({"name": {"x": 1}}))
    assert "facegan run: run<" in render_report(run)
