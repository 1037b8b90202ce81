"""The errors a user can fix. Each message is one line: the problem, then the fix.

The CLI prints them as `facegan: error: ...` instead of a traceback. Errors of one
part of the library live beside it (CheckpointError, MetricsError, TrainingError);
these two are raised all over, so they live here, below every module that raises them.
"""


class ConfigError(ValueError):
    """A config value a run cannot use; the message names the field and the fix."""


class DataError(ValueError):
    """A dataset problem the user can fix; the message names it and the fix."""
