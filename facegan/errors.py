"""The errors a user can fix. Each message is one line: the problem, then the fix.

The CLI prints them as `facegan: error: ...` instead of a traceback. Errors of one
part of the library live beside it (CheckpointError, MetricsError, TrainingError);
these two are raised all over, so they live here, below every module that raises them.
"""


class ConfigError(ValueError):
    """A config value a run cannot use; the message names the field and the fix."""


class DataError(ValueError):
    """A dataset problem the user can fix; the message names it and the fix."""


class RunFolderError(ValueError):
    """A file of a run folder that cannot be used (a corrupt metrics line, a run already
    there, another process training into it); the message names the file and the fix."""


class OutputError(OSError):
    """An output that cannot be written (full disk, read-only place, a file where a folder
    should be). Whatever was there before is intact: writes are atomic. Its errno and
    strerror are the cause's; str() is the one-line message."""

    def __str__(self) -> str:
        return self.args[0]
