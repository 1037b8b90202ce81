"""Import paths of facegan 0.1 that moved into subpackages: they keep working for one release.

`import facegan.models` (or `from facegan.train import train`) still finds the code at its
new home, with a DeprecationWarning naming that home. facegan/__init__ installs the finder.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

# old module -> the module(s) that hold its names now (several where one module was split)
MOVED = {
    "accel": ("utils.accel",), "atomic": ("utils.atomic",), "bars": ("utils.bars",), "seeds": ("utils.seeds",),
    "archs": ("nets.archs",), "models": ("nets.models",), "resnets": ("nets.resnets",),
    "progressive": ("nets.progressive",),
    "synthetic": ("data.synthetic",), "celeba": ("data.celeba", "data.download", "data.unzip"), "tone": ("data.tone",),
    "sample": ("generate.sample",), "export": ("generate.export",),
    "metrics": ("eval.metrics",), "audit": ("eval.audit",), "report": ("eval.report",), "plots": ("eval.plots",),
    "runlog": ("eval.runlog",),
    "train": ("training.loop",), "step": ("training.step",), "losses": ("training.losses",),
    "augment": ("training.augment",), "schedules": ("training.schedules",), "ema": ("training.ema",),
    "resume": ("training.resume",), "runfolder": ("training.runfolder",),
    "distributed": ("training.distributed",), "monitor": ("training.monitor",),
    "recorder": ("training.steplog", "training.snapshots", "training.evaluation", "training.stopping",
                 "training.views"),
    "cli": ("commands.cli", "commands.train", "commands.sample", "commands.evaluate", "commands.export",
            "commands.report", "commands.view", "commands.audit", "commands.synth", "commands.serve",
            "commands.exercise", "commands.sweep", "commands.argtypes"),
    "argtypes": ("commands.argtypes",), "serve": ("commands.explorer",),
    "sweep": ("commands.search",), "exercise": ("commands.exercise_notebook",),
}


def warn_moved(old: str, new: tuple[str, ...]) -> None:
    homes = " or ".join(f"facegan.{n}" for n in new)
    warnings.warn(f"facegan.{old} moved to {homes}; import from there (the old path goes in the next release)",
                  DeprecationWarning, stacklevel=_caller_level())


def _caller_level() -> int:
    """The stacklevel of the first frame outside the import machinery and the forwarding
    code, so the warning names the user's import line. warnings.warn does not count the
    frames of importlib._bootstrap, so neither does this."""
    frame, level = sys._getframe(1), 1
    while frame is not None and (_is_bootstrap(frame) or frame.f_globals.get("__name__") in _FORWARDERS):
        frame = frame.f_back
        if frame is not None and not _is_bootstrap(frame):
            level += 1
    return level


_FORWARDERS = ("facegan.moved", "facegan.data", "importlib")


def _is_bootstrap(frame) -> bool:
    name = frame.f_code.co_filename
    return "importlib" in name and "_bootstrap" in name


class MovedModule(types.ModuleType):
    """Stands in for an old module: its names come from the new homes. Calling it calls the
    function it was named for (`facegan.train` stays callable after `import facegan.train`)."""

    def __init__(self, name: str, homes: tuple[str, ...]):
        super().__init__(name)
        self.__homes = [importlib.import_module(f"facegan.{h}") for h in homes]

    def __getattr__(self, attr: str):
        for home in self.__homes:
            if hasattr(home, attr):
                return getattr(home, attr)
        raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")

    def __dir__(self):
        return sorted({n for home in self.__homes for n in dir(home)})

    def __call__(self, *args, **kwargs):
        return getattr(self, self.__name__.rpartition(".")[2])(*args, **kwargs)


class MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        package, _, old = fullname.rpartition(".")
        if package == "facegan" and old in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        old = spec.name.rpartition(".")[2]
        warn_moved(old, MOVED[old])
        return MovedModule(spec.name, MOVED[old])

    def exec_module(self, module):
        pass


def install() -> None:
    if not any(isinstance(f, MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedFinder())
