"""The errors a user can cause and fix, in one place. Each message is one line: the problem, then the fix.

They all derive from FaceganError, so the CLI catches one type and prints `facegan: error: ...`
instead of a traceback. Each also keeps the builtin base its callers catch (ValueError,
OSError, RuntimeError).
"""


class FaceganError(Exception):
    """A problem the user can fix; str() is the one-line message."""


class ConfigError(FaceganError, ValueError):
    """A config value a run cannot use; the message names the field and the fix."""


class DataError(FaceganError, ValueError):
    """A dataset problem the user can fix; the message names it and the fix."""


class RunFolderError(FaceganError, ValueError):
    """A file of a run folder that cannot be used (a corrupt metrics line, a run already
    there, another process training into it); the message names the file and the fix."""


class CheckpointError(FaceganError, RuntimeError):
    """A checkpoint that is missing, corrupt, or from an incompatible run."""


class MetricsError(FaceganError, RuntimeError):
    """A metric cannot be computed; the message names the problem and the fix."""


class TrainingError(FaceganError, RuntimeError):
    """Training cannot go on (e.g. the losses became NaN); the message says what to do."""


class OutputError(FaceganError, OSError):
    """An output that cannot be written (full disk, read-only place, a file where a folder
    should be). Whatever was there before is intact: writes are atomic. Its errno and
    strerror are the cause's; str() is the one-line message."""

    def __str__(self) -> str:
        return self.args[0]
