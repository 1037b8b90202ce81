"""Hyperparameter search with Optuna: each trial is an ordinary training run, scored by its lowest FID.

`run_sweep(base, space, options)` runs an Optuna study over some TrainConfig fields (the
search space: ranges and choice lists, see `parse_param` and `read_space`). Each trial
trains `base` with its sampled values into a run folder of its own; the training-time
evaluation (eval_every) writes FID rows to that run's metrics.jsonl, which the trial
reports to the pruner after every evaluated epoch. The sweep folder:

    SWEEP_DIR/study.db                  the study (default storage; --storage takes any database)
    SWEEP_DIR/sweep.json                which study this folder holds, its space and base config
    SWEEP_DIR/trial-NNN/                trial NNN's run folder: config.json, metrics.jsonl, checkpoints/...
    SWEEP_DIR/trials.csv                a row per trial: state, lowest FID, params, run folder, seconds
    SWEEP_DIR/optimization_history.png  FID per trial, and the best so far
    SWEEP_DIR/param_importances.png     how much each searched field mattered (from 2 completed trials)

A sweep is resumable: run again, it loads its study, keeps the finished trials, runs an
interrupted trial again with the same values (continuing its run folder from its last
checkpoint) and then only the trials still missing. One process works on a sweep folder at a time.

Optuna is the optional `sweep` extra (pip install 'facegan[sweep]'), so it is imported by
name when a sweep starts: `import facegan` and training never need it.
"""
from __future__ import annotations

import contextlib
import csv
import difflib
import errno
import io
import json
import math
import signal
import socket
import warnings
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ..config import RENAMED_KEYS, Choice, TrainConfig, preset, resumable_fields
from ..errors import ConfigError, FaceganError, OutputError, RunFolderError, TrainingError
from ..eval.runlog import read_metrics
from ..training.loop import train
from ..training.resume import latest_checkpoint
from ..training.runfolder import RunFolder, holds_run
from ..training.stopping import RunInterrupted
from ..utils import jsonfile
from ..utils.atomic import atomic_write_text

FIELDS = {f.name: f for f in fields(TrainConfig)}
# Fields the sweep sets itself: a trial's folder, and the evaluation every trial is scored by
# (FIDs from other sample counts or epochs do not compare).
SWEEP_OWNED = {"out": "the sweep names each trial's folder (give the sweep's folder with --out)",
               "name": "the sweep names each trial after its number",
               "eval_every": "every trial is scored alike; fix it with --set eval_every=E",
               "eval_n": "FIDs from other sample counts do not compare; fix it with --set eval_n=N"}
# What a resumed sweep may change: the hardware and bookkeeping, nothing a score depends on
# (and only what a resumed training run accepts too).
FREE_ON_RESUME = {"device", "fast", "amp", "compile", "sync_bn", "log_every", "keep_checkpoints",
                  "tensorboard"} & resumable_fields()
TRUE, FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")
SPACE_EXAMPLE = "e.g. lr_d=1e-5:1e-3:log (a range, log scale) or batch_size=32,64,128 (choices)"


# ---------------------------------------------------------------- the search space

@dataclass(frozen=True)
class Param:
    """One searched field: a range low..high (on a log scale if `log`), or a list of choices."""
    name: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple = ()

    def suggest(self, trial):
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if FIELDS[self.name].type == "int":
            return trial.suggest_int(self.name, self.low, self.high, log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def to_json(self) -> dict:
        if self.choices:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log}

    @property
    def smallest(self):
        return min(self.choices) if self.choices else self.low


def parse_param(text: str) -> Param:
    """A --param FIELD=SPEC: LOW:HIGH or LOW:HIGH:log (a range), or A,B,... (choices)."""
    name, sep, spec = (part.strip() for part in text.partition("="))
    where = f"--param {text}"
    if not (sep and name and spec):
        raise ConfigError(f"{where}: write FIELD=LOW:HIGH[:log] or FIELD=A,B,...; {SPACE_EXAMPLE}")
    return make_param(name, _spec_from_text(name, spec, where), where)


def _spec_from_text(name: str, spec: str, where: str) -> dict:
    text_field = name in FIELDS and FIELDS[name].type == "str"  # "cuda:0,cpu" lists choices
    if ":" in spec and not text_field:
        parts = spec.split(":")
        if len(parts) == 3 and parts[2].strip().lower() == "log":
            return {"low": parts[0], "high": parts[1], "log": True}
        if len(parts) != 2:
            raise ConfigError(f"{where}: a range is LOW:HIGH or LOW:HIGH:log; {SPACE_EXAMPLE}")
        return {"low": parts[0], "high": parts[1]}
    return {"choices": [c.strip() for c in spec.split(",")]}


def read_space(path: str | Path | None, params: list[str] = ()) -> list[Param]:
    """The search space of a JSON file ({"field": spec, ...}) and --param flags, together."""
    space = _space_file(Path(path)) if path else []
    space += [parse_param(text) for text in params]
    if not space:
        raise ConfigError(f"no search space: give --param FIELD=SPEC (repeatable) or --space FILE.json; {SPACE_EXAMPLE}")
    names = [p.name for p in space]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{', '.join(twice)} is searched twice; give each field one range or one list of choices")
    return space


def _space_file(path: Path) -> list[Param]:
    try:
        data = jsonfile.read_json(path)
    except OSError as e:
        raise ConfigError(f"--space {path}: cannot read it ({e.strerror}); give the path of a JSON file") from None
    except jsonfile.BadJSON as e:
        raise ConfigError(f"--space {path} is {e}; write it as {{\"lr_d\": {{\"low\": 1e-5, "
                          f"\"high\": 1e-3, \"log\": true}}, \"batch_size\": {{\"choices\": [32, 64]}}}}") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"--space {path}: expected a JSON object of field: spec, e.g. "
                          f"{{\"beta1\": {{\"choices\": [0.0, 0.5]}}}}")
    space = []
    for name, spec in data.items():
        where = f"--space {path}, {name}"
        if isinstance(spec, str):  # the flag syntax, "1e-5:1e-3:log"
            spec = _spec_from_text(name, spec, where)
        if not isinstance(spec, dict) or not ({"choices"} == set(spec) or {"low", "high"} <= set(spec) <= {
                "low", "high", "log"}):
            raise ConfigError(f"{where}: give {{\"low\": L, \"high\": H}} (plus \"log\": true for a log scale), "
                              f"{{\"choices\": [A, B]}} or a string such as \"1e-5:1e-3:log\"")
        space.append(make_param(name, spec, where))
    return space


def make_param(name: str, spec: dict, where: str) -> Param:
    """A checked Param: a known field the sweep does not own, typed values its rule allows."""
    name = RENAMED_KEYS.get(name, name)
    _check_searchable(name, where)
    if "choices" in spec:
        return _choices(name, spec["choices"], where)
    return _range(name, spec, where)


def _check_field(name: str, where: str) -> None:
    if name not in FIELDS:
        near = difflib.get_close_matches(name, FIELDS, n=1)
        hint = f"did you mean {near[0]}? " if near else ""
        raise ConfigError(f"{where}: {name!r} is not a TrainConfig field; {hint}the fields are the train "
                          f"options (python -m facegan train --help)")


def _check_searchable(name: str, where: str) -> None:
    _check_field(name, where)
    if name in SWEEP_OWNED:
        raise ConfigError(f"{where}: {name} cannot be searched: {SWEEP_OWNED[name]}")


def _choices(name: str, raw, where: str) -> Param:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: \"choices\" must be a list, e.g. [32, 64]")
    values = tuple(dict.fromkeys(_allowed(name, typed_value(name, r, where), where) for r in raw))
    if len(values) < 2:
        raise ConfigError(f"{where}: give two or more different choices (fix a single value with "
                          f"--set {name}=VALUE instead)")
    return Param(name, choices=values)


def _range(name: str, spec: dict, where: str) -> Param:
    kind, check = FIELDS[name].type, FIELDS[name].metadata["check"]
    if kind not in ("int", "float") or isinstance(check, Choice):
        options = f" ({check.describe()})" if isinstance(check, Choice) else ""
        raise ConfigError(f"{where}: {name} takes a list of choices, not a range{options}; e.g. {name}=A,B")
    low, high = (_allowed(name, typed_value(name, spec[k], where), where) for k in ("low", "high"))
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: \"log\" is true or false")
    if not low < high:
        raise ConfigError(f"{where}: the range {low}:{high} is empty; give LOW:HIGH with LOW < HIGH")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log-scale range needs LOW > 0 (got {low}); raise LOW or drop :log")
    return Param(name, low=low, high=high, log=log)


def typed_value(name: str, raw, where: str):
    """`raw` (text from a flag, or a JSON value) as the type of field `name`, or a one-line error."""
    kind = FIELDS[name].type
    if isinstance(raw, str) and kind != "str":
        text = raw.strip().lower()
        try:
            if kind == "bool":
                if text not in TRUE + FALSE:
                    raise ValueError
                return text in TRUE
            value = int(text) if kind == "int" else float(text)
        except ValueError:
            wanted = {"int": "a whole number", "float": "a number", "bool": "true or false"}[kind]
            raise ConfigError(f"{where}: {raw!r} is not {wanted}, as {name} needs") from None
    else:
        value = raw
    ok = {"int": isinstance(value, int) and not isinstance(value, bool),
          "float": isinstance(value, (int, float)) and not isinstance(value, bool),
          "bool": isinstance(value, bool), "str": isinstance(value, str)}[kind]
    if not ok:
        raise ConfigError(f"{where}: {value!r} is not a{'n' if kind == 'int' else ''} {kind}, as {name} needs")
    if kind == "float" and not math.isfinite(value):
        raise ConfigError(f"{where}: {name}={value} must be a finite number")
    return float(value) if kind == "float" else value


def _allowed(name: str, value, where: str):
    check = FIELDS[name].metadata["check"]
    if check is not None and not check.allows(value):
        note = getattr(check, "note", "")
        raise ConfigError(f"{where}: {name}={value!r}: {check.describe()}" + (f" ({note})" if note else ""))
    return value


# ---------------------------------------------------------------- the base config

def base_config(preset_name: str | None, settings: list[str] = ()) -> TrainConfig:
    """What every trial starts from: a preset (or the defaults) with --set FIELD=VALUE overrides."""
    overrides = {}
    for text in settings:
        name, sep, raw = (part.strip() for part in text.partition("="))
        where = f"--set {text}"
        if not (sep and name):
            raise ConfigError(f"{where}: write FIELD=VALUE, e.g. --set epochs=10")
        name = RENAMED_KEYS.get(name, name)
        if name in ("out", "name"):
            raise ConfigError(f"{where}: {SWEEP_OWNED[name]}")
        _check_field(name, where)
        overrides[name] = typed_value(name, raw, where)
    return preset(preset_name, **overrides) if preset_name else TrainConfig(**overrides)


EVAL_AT_THE_END_ONLY = 1_000_000  # eval_every beyond any epoch a trial reaches: only a spent budget is scored


def scored_config(base: TrainConfig, space: list[Param], log=print) -> TrainConfig:
    """`base` with an evaluation every trial is scored by; refused if some trial would go unscored.
    Trials on a time budget alone (minutes=M, epochs=0) are scored once, at the budget's end."""
    if base.epochs == 0 and not any(p.name == "epochs" for p in space):
        if base.eval_every == 0:
            log(f"note: each trial trains {base.minutes:g} minutes and is scored once, on the weights it ends "
                f"with (--set eval_every=E to also evaluate every E epochs)")
            base = TrainConfig.from_dict({**base.to_dict(), "eval_every": EVAL_AT_THE_END_ONLY})
        return base
    if base.eval_every == 0:
        log("note: eval_every=0 turns evaluation off, but trials are scored by FID: using eval_every=1 "
            "(--set eval_every=E to evaluate less often)")
        base = TrainConfig.from_dict({**base.to_dict(), "eval_every": 1})
    epochs = next((p.smallest for p in space if p.name == "epochs"), base.epochs)
    if epochs < base.eval_every:
        raise ConfigError(f"eval_every={base.eval_every} but a trial may train only {epochs} epochs, so it "
                          f"would never be scored; lower eval_every (--set eval_every=1) or train longer")
    return base


# ---------------------------------------------------------------- one trial

def _fid_rows(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [r for r in read_metrics(path) if "fid" in r] if path.is_file() else []


class Objective:
    """One trial: its config and run folder, training that reports each FID, and its score.

    A trial's score is the lowest FID its run reached (not the last: GAN quality wanders,
    and the run keeps a snapshot of each epoch for a while). A retried trial (see
    `requeue_unfinished`) continues the run folder of the trial it retries."""

    def __init__(self, base: TrainConfig, space: list[Param], sweep_dir: Path, progress: bool = True, log=print):
        self.base, self.space, self.sweep_dir, self.progress, self.log = base, space, sweep_dir, progress, log

    def __call__(self, trial) -> float:
        optuna = _optuna()
        run_name = trial.user_attrs.get("run_dir", f"trial-{trial.number:03d}")
        trial.set_user_attr("run_dir", run_name)
        trial.set_user_attr("worker", worker_id(self.sweep_dir))
        run_dir = self.sweep_dir / run_name
        try:
            params = {p.name: p.suggest(trial) for p in self.space}
            cfg = TrainConfig.from_dict({**self.base.to_dict(), **params, "out": str(run_dir), "name": run_name})
            self.log(f"trial {trial.number}: {_describe(params)} -> {run_dir}")
            pruned_at = self._train(trial, cfg)
        except (ConfigError, TrainingError) as e:  # these values fail (or diverge); the sweep goes on
            trial.set_user_attr("error", str(e))
            raise
        except BaseException:  # Ctrl-C, SIGTERM, a full disk...: not the values' fault, so the
            trial.set_user_attr("unfinished", True)  # next sweep runs the trial again
            raise
        fids = _fid_rows(run_dir)
        if not fids:
            raise TrainingError(f"{run_dir}/metrics.jsonl has no FID row, so the trial has no score")
        best = min(fids, key=lambda r: r["fid"])
        trial.set_user_attr("best_epoch", best["epoch"])
        if pruned_at is not None:
            raise optuna.TrialPruned(f"pruned after epoch {pruned_at}")
        return best["fid"]

    def _train(self, trial, cfg: TrainConfig) -> int | None:
        """Train the trial's run, reporting each FID; the epoch it was pruned after, or None."""
        retry = "retry_of" in trial.user_attrs
        resume = retry and latest_checkpoint(cfg.run_dir).is_file()
        if not retry and holds_run(cfg.run_dir):
            raise RunFolderError(f"{cfg.run_dir} holds a run the study does not know of; move it away, "
                                 f"or give the sweep another --out")
        for row in _fid_rows(cfg.run_dir) if resume else []:  # what the interrupted try measured
            trial.report(row["fid"], step=row["epoch"])
        pruned = []

        def should_stop(epochs_done: int) -> bool:
            row = next((r for r in reversed(_fid_rows(cfg.run_dir)) if r["epoch"] == epochs_done), None)
            if row is None:  # not an evaluated epoch
                return False
            trial.report(row["fid"], step=epochs_done)
            if trial.should_prune():
                pruned.append(epochs_done)
            return bool(pruned)

        # A retried trial without a checkpoint starts its own folder over.
        train(cfg, resume=resume, overwrite=retry and not resume,
              progress=self.progress, log=self.log, should_stop=should_stop)
        return pruned[0] if pruned else None


def _describe(params: dict) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


# ---------------------------------------------------------------- the study

@dataclass
class SweepOptions:
    out: Path                   # the sweep folder
    trials: int = 20            # finished trials wanted (complete, pruned or failed)
    study: str | None = None    # default: the folder's name
    storage: str | None = None  # default: sqlite:///OUT/study.db
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0               # the sampler's; every trial trains with the config's own seed


def _optuna():
    """Optuna, or one line on how to install it (it is an optional extra)."""
    try:
        import optuna
        import optuna.visualization.matplotlib  # noqa: F401  (the plots' module, loaded with it)
        return optuna
    except ImportError as e:
        missing = "" if (e.name or "").split(".")[0] == "optuna" else f" ({e})"
        raise ConfigError(f"facegan sweep needs Optuna{missing}: pip install 'facegan[sweep]' "
                          f"(or pip install optuna)") from None


def run_sweep(base: TrainConfig, space: list[Param], options: SweepOptions, progress: bool = True,
              log=print) -> dict:
    """Run (or continue) the study until it has `options.trials` finished trials; its summary."""
    optuna = _optuna()
    sweep_dir = Path(options.out)
    base = scored_config(base, space, log)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # each trial's outcome is said by _after_trial
    try:
        with RunFolder(sweep_dir, resume=True):  # the lock: one process per sweep folder
            return _run_study(optuna, base, space, options, sweep_dir, progress, log)
    except Exception as e:
        cause = None if isinstance(e, FaceganError) else read_only_cause(e)
        if cause is None:
            raise
        where = options.storage or (sweep_dir / "study.db")
        raise OutputError(f"cannot write the sweep's study database {where}: it is read-only ({cause}); nothing "
                          f"was lost (a failed write changes nothing, and the trials' run folders stay): make the "
                          f"database and its folder writable (chmod u+w; chattr -i if immutable) and run the same "
                          f"command again") from None
    finally:
        optuna.logging.set_verbosity(verbosity)


_READ_ONLY = ("readonly database", "read-only", "unable to open database file")


def read_only_cause(error: BaseException) -> str | None:
    """The innermost cause in an exception's chain saying the database cannot be written
    (SQLite's "attempt to write a readonly database", wrapped by SQLAlchemy and then by
    Optuna), as one line; None when the chain says nothing of the kind."""
    found, seen = None, set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if isinstance(error, OSError) and error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            found = text
        elif type(error).__name__ == "OperationalError" and any(s in text.lower() for s in _READ_ONLY):
            found = text
        error = error.__cause__ or error.__context__
    return found


def _run_study(optuna, base: TrainConfig, space: list[Param], options: SweepOptions, sweep_dir: Path,
               progress: bool, log) -> dict:
    study, storage = _open_study(optuna, base, space, options, sweep_dir)
    requeue_unfinished(optuna, study, storage, sweep_dir, log)
    missing = options.trials - len(finished_trials(optuna, study))
    if missing > 0:
        log(f"study {study.study_name}: {missing} of {options.trials} trials to run in {sweep_dir}")
    objective = Objective(base, space, sweep_dir, progress, log)
    stopped = True
    try:
        if missing > 0:
            study.optimize(objective, n_trials=missing, catch=(ConfigError, TrainingError),
                           callbacks=[lambda s, t: _after_trial(optuna, s, t, sweep_dir, log)])
        stopped = False
    except RunInterrupted as e:  # its message says "continue with --resume": not how a sweep goes on
        raise RunInterrupted(e.signum, f"{signal.Signals(e.signum).name}: the sweep stopped, its trial's run "
                                       f"checkpointed; run the same sweep command again to continue it") from None
    finally:
        if stopped:  # what the study holds so far, without hiding why it stopped (a read-only folder, say)
            with contextlib.suppress(OSError, ValueError):
                write_outputs(optuna, study, sweep_dir)
    notes = write_outputs(optuna, study, sweep_dir)
    return summarize(optuna, study, sweep_dir, notes)


def _open_study(optuna, base: TrainConfig, space: list[Param], options: SweepOptions, sweep_dir: Path):
    """The study of this folder, created or loaded; refused when it is another folder's or
    was run with another space or base config."""
    name = options.study or sweep_dir.resolve().name
    url = options.storage or f"sqlite:///{(sweep_dir / 'study.db').resolve()}"
    _check_folder_study(sweep_dir, name)
    try:
        storage = optuna.storages.RDBStorage(url)
    except Exception as e:  # a bad URL or a missing database driver raises many types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"--storage {url}: Optuna cannot open it ({first}); give a database URL such as "
                          f"sqlite:///path/study.db") from None
    n_before = _trial_count(storage, name)
    study = optuna.create_study(storage=storage, study_name=name, direction="minimize", load_if_exists=True,
                                sampler=_sampler(optuna, options, n_before), pruner=_pruner(optuna, options))
    _claim(study, base, space)
    atomic_write_text(sweep_dir / "sweep.json", json.dumps(
        {"study": name, "space": {p.name: p.to_json() for p in space}, "base": base.to_dict()}, indent=2) + "\n")
    return study, storage


def _check_folder_study(sweep_dir: Path, name: str) -> None:
    saved = sweep_dir / "sweep.json"
    if saved.is_file():
        try:
            held = jsonfile.read_json(saved).get("study")
        except (OSError, ValueError, AttributeError):  # ValueError: jsonfile.BadJSON
            raise ConfigError(f"{saved} is unreadable; it names the folder's study: restore it, or delete it "
                              f"if this folder holds no other study's trials") from None
        if held != name:
            raise ConfigError(f"{sweep_dir} holds the trials of study {held!r}; continue it with --study {held}, "
                              f"or give the new study another --out")


def _trial_count(storage, name: str) -> int:
    try:
        return storage.get_n_trials(storage.get_study_id_from_name(name))
    except KeyError:  # a new study
        return 0


def _sampler(optuna, options: SweepOptions, n_before: int):
    # A resumed sweep must not draw its first trials' values again: its sampler's seed
    # also depends on how many trials the study already has.
    seed = options.seed if n_before == 0 else int(
        np.random.SeedSequence([options.seed, n_before]).generate_state(1)[0])
    if options.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _pruner(optuna, options: SweepOptions):
    # median: stop a trial whose FID at an epoch is worse than the median of earlier
    # trials' at that epoch (after 5 trials have finished).
    return optuna.pruners.MedianPruner() if options.pruner == "median" else optuna.pruners.NopPruner()


def worker_id(sweep_dir: Path) -> str:
    """Who runs a trial: this host and sweep folder. Machines sharing a study through
    --storage each run theirs in their own folder."""
    return f"{socket.gethostname()}:{sweep_dir.resolve()}"


def _claim(study, base: TrainConfig, space: list[Param]) -> None:
    """Tie the study to its space and base config; a later run, or another machine joining
    through --storage, must match them, except in the fields that cannot change a trial's
    score (FREE_ON_RESUME)."""
    compared = set(FIELDS) - FREE_ON_RESUME - {"out", "name"}
    wanted = {"space": {p.name: p.to_json() for p in space},
              "base": {k: v for k, v in base.to_dict().items() if k in compared}}
    held = study.user_attrs
    if not held:
        for key, value in wanted.items():
            study.set_user_attr(key, value)
        return
    # A field newer than the study (added to TrainConfig since) is no difference.
    wanted["base"] = {k: v for k, v in wanted["base"].items() if k in held.get("base", {})}
    for key, what in (("space", "another search space"), ("base", "another base config")):
        if held.get(key) != wanted[key]:
            diff = _first_difference(held.get(key), wanted[key])
            raise ConfigError(f"study {study.study_name!r} was run with {what} ({diff}); rerun the sweep's "
                              f"own command, or start a new sweep with another --out and --study")


def _first_difference(held, wanted) -> str:
    held, wanted = held or {}, wanted or {}
    for key in sorted(set(held) | set(wanted)):
        if held.get(key) != wanted.get(key):
            return f"{key}: {held.get(key, 'absent')} then, {wanted.get(key, 'absent')} now"
    return "?"


def finished_trials(optuna, study) -> list:
    """Trials that count towards --trials: complete, pruned, or failed for a reason of their own
    (not an interruption: those run again)."""
    State = optuna.trial.TrialState
    return [t for t in study.get_trials(deepcopy=False)
            if t.state in (State.COMPLETE, State.PRUNED) or
            (t.state == State.FAIL and not t.user_attrs.get("unfinished"))]


def requeue_unfinished(optuna, study, storage, sweep_dir: Path, log=print) -> None:
    """Trials a stopped sweep left unfinished run again, each once, with the same values.

    A killed process leaves its trial RUNNING (this process holds the folder's lock, so
    no other one is running it): it is marked failed and interrupted here. Only this
    worker's trials (this host and sweep folder): other machines sharing the study through
    --storage keep theirs. Ctrl-C or
    SIGTERM fail it as interrupted. The retry, a new trial, continues the same run
    folder from its last checkpoint (or starts it over when it has none)."""
    State = optuna.trial.TrialState
    study_id = storage.get_study_id_from_name(study.study_name)
    mine = worker_id(sweep_dir)
    for t in study.get_trials(deepcopy=False, states=(State.RUNNING,)):
        if t.user_attrs.get("worker", mine) != mine:  # another machine's, still at work
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        storage.set_trial_user_attr(trial_id, "unfinished", True)
        storage.set_trial_state_values(trial_id, State.FAIL)
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for t in trials:
        if (t.state == State.FAIL and t.user_attrs.get("unfinished") and t.number not in retried
                and t.user_attrs.get("worker", mine) == mine):  # its run folder is in this sweep folder
            run_name = t.user_attrs.get("run_dir", f"trial-{t.number:03d}")
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number, "run_dir": run_name})
            log(f"trial {t.number} was interrupted: it runs again, continuing {run_name}")


def _after_trial(optuna, study, trial, sweep_dir: Path, log) -> None:
    State = optuna.trial.TrialState
    if trial.state == State.COMPLETE:
        log(f"trial {trial.number}: FID {trial.value:.2f} (epoch {trial.user_attrs.get('best_epoch')}); "
            f"best so far: trial {study.best_trial.number}, FID {study.best_value:.2f}")
    elif trial.state == State.PRUNED:
        log(f"trial {trial.number}: pruned after epoch {max(trial.intermediate_values, default='?')}")
    else:
        log(f"trial {trial.number} failed: {trial.user_attrs.get('error', 'see the message above')}")
    write_trials_csv(study, sweep_dir / "trials.csv")


# ---------------------------------------------------------------- outputs

def write_outputs(optuna, study, sweep_dir: Path) -> list[str]:
    """trials.csv and the plots; notes on what was skipped."""
    write_trials_csv(study, sweep_dir / "trials.csv")
    return write_plots(optuna, study, sweep_dir)


def write_trials_csv(study, path: Path) -> None:
    trials = study.get_trials(deepcopy=False)
    names = list(dict.fromkeys(k for t in trials for k in t.params))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["number", "state", "fid", "best_epoch", *names, "run_dir", "seconds", "note"])
    for t in trials:
        seconds = round(t.duration.total_seconds(), 1) if t.duration else ""
        writer.writerow([t.number, t.state.name, "" if t.value is None else t.value, t.user_attrs.get("best_epoch", ""),
                         *(t.params.get(n, "") for n in names), t.user_attrs.get("run_dir", ""), seconds, _note(t)])
    atomic_write_text(path, out.getvalue())


def _note(trial) -> str:
    attrs = trial.user_attrs
    if "error" in attrs:
        return attrs["error"]
    if attrs.get("unfinished"):
        return "interrupted (run again by a later trial)"
    if trial.state.name == "PRUNED":
        return f"pruned after epoch {max(trial.intermediate_values, default='?')}"
    return f"retry of trial {attrs['retry_of']}" if "retry_of" in attrs else ""


def write_plots(optuna, study, sweep_dir: Path) -> list[str]:
    """optimization_history.png and param_importances.png, each written when it can say something."""
    import matplotlib
    import matplotlib.pyplot as plt

    from ..eval.plots import save_figure

    State = optuna.trial.TrialState
    done = study.get_trials(deepcopy=False, states=(State.COMPLETE,))
    if not done:
        return ["no trial has completed yet: no plots"]
    vis = optuna.visualization.matplotlib
    notes = []
    varied = [n for n in done[0].params if len({repr(t.params.get(n)) for t in done}) > 1]
    plots = {"optimization_history.png": lambda: vis.plot_optimization_history(study, target_name="FID")}
    if len(done) >= 2 and varied:
        plots["param_importances.png"] = lambda: vis.plot_param_importances(study, target_name="FID")
    else:
        notes.append("param_importances.png skipped: it needs 2 completed trials whose values differ")
    # Optuna's plots are pyplot figures in its own style: keep both out of the caller's matplotlib.
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for name, plot in plots.items():
            try:
                ax = plot()
            except (ValueError, RuntimeError) as e:  # e.g. importances the evaluator cannot estimate
                notes.append(f"{name} skipped: {e}")
                continue
            save_figure(ax.figure, sweep_dir / name)
            plt.close(ax.figure)
    return notes


def summarize(optuna, study, sweep_dir: Path, notes: list[str]) -> dict:
    State = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    unfinished = sum(t.state == State.FAIL and bool(t.user_attrs.get("unfinished")) for t in trials)
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in (State.COMPLETE, State.PRUNED, State.FAIL)}
    summary = {"study": study.study_name, "sweep_dir": str(sweep_dir), "trials": len(trials), **counts,
               "fail": counts["fail"] - unfinished, "interrupted": unfinished, "notes": notes, "best": None}
    if counts["complete"]:
        best = study.best_trial
        run_dir = sweep_dir / best.user_attrs["run_dir"]
        summary["best"] = {"number": best.number, "fid": best.value, "epoch": best.user_attrs.get("best_epoch"),
                           "params": best.params, "run_dir": str(run_dir), **_best_weights(run_dir)}
    return summary


def _best_weights(run_dir: Path) -> dict:
    # Runs that keep their lowest-FID snapshot (checkpoints/best.pt) are sampled from it.
    best = run_dir / "checkpoints" / "best.pt"
    if best.is_file():
        return {"checkpoint": str(best), "weights": "its lowest-FID weights"}
    return {"checkpoint": str(latest_checkpoint(run_dir)), "weights": "the run's last weights"}


def summary_lines(summary: dict) -> list[str]:
    """What the command prints when the sweep ends."""
    again = f", {summary['interrupted']} interrupted and run again" if summary["interrupted"] else ""
    n = summary["trials"]
    lines = [f"study {summary['study']}: {n} trial{'s' * (n != 1)} ({summary['complete']} complete, "
             f"{summary['pruned']} pruned, {summary['fail']} failed{again}) in {summary['sweep_dir']}"]
    lines += [f"note: {n}" for n in summary["notes"]]
    best = summary["best"]
    if best is None:
        return lines + ["no trial has completed yet, so there is no best one"]
    sweep_dir = Path(summary["sweep_dir"])
    return lines + [
        f"best: trial {best['number']}, FID {best['fid']:.2f} (at epoch {best['epoch']}) with {_describe(best['params'])}",
        f"run folder: {best['run_dir']}; trials.csv and the plots are in {sweep_dir}",
        f"sample it:  python -m facegan sample --checkpoint {best['checkpoint']} --n 64 "
        f"--out {sweep_dir / 'best.png'}   ({best['weights']})",
    ]
