"""Reading JSON that a user, another program or an attacker may have written.

json.loads raises RecursionError on input nested past the interpreter's depth (such as
"[" * 100000), which callers that catch ValueError miss; here every way the text can be
wrong is a BadJSON, a ValueError whose str() is a one-line reason to put after a path.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class BadJSON(ValueError):
    """Text that is not usable JSON; str() is a one-line reason."""


def loads(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BadJSON(f"not JSON ({e})") from None
    except RecursionError:  # the C decoder recurses once per level of nesting
        raise BadJSON("JSON nested too deeply to read") from None
    except (UnicodeDecodeError, TypeError):
        raise BadJSON("not UTF-8 JSON text") from None


def read_json(path: str | Path) -> Any:
    """The JSON value of a file; OSError when it cannot be read, BadJSON when it is not JSON."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadJSON("not UTF-8 text") from None
    return loads(text)
