"""`facegan report` writes only into facegan's own run folders, and a damaged metrics row costs
the page that point, not the page."""
import json

from facegan.commands.cli import main
from facegan.training.loop import train


def test_report_refuses_a_folder_that_is_not_a_facegan_run(tmp_path, capsys):
    other = tmp_path / "project"
    other.mkdir()
    files = {"config.json": b'{"learning_rate": 0.1}', "report.html": b"<p>the project's own report</p>"}
    for name, data in files.items():
        (other / name).write_bytes(data)
    assert main(["report", str(other)]) == 1
    err = capsys.readouterr().err
    assert "not a facegan run folder" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in other.iterdir()} == files


def test_report_skips_metrics_rows_that_lack_numbers(tiny_cfg, capsys):
    cfg = tiny_cfg()
    train(cfg, progress=False, log=lambda *a: None)
    metrics = cfg.run_dir / "metrics.jsonl"
    damaged = [{"step": 5, "d_loss": 1.0}, {"step": "x", "images": 3, "d_loss": 1.0}, {"fid": 3.0},
               {"images": 10, "fid": "low", "epoch": 1}]
    metrics.write_text(metrics.read_text() + "".join(json.dumps(r) + "\n" for r in damaged))
    (cfg.run_dir / "report.html").unlink()
    assert main(["report", str(cfg.run_dir)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert "epoch" in (cfg.run_dir / "report.html").read_text()
