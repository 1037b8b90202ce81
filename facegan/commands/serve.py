"""`facegan serve`: its arguments and handler. The page server is explorer.py's, which imports
torch, so it loads only when the command runs, not for `facegan --help`."""
from __future__ import annotations

import argparse

from ..errors import ConfigError
from .argtypes import PORT, DefaultsFormatter


def add_serve_parser(sub) -> None:
    p = sub.add_parser("serve", help="a local web page to explore a generator: seeds, truncation, walks",
                       formatter_class=DefaultsFormatter)
    p.add_argument("--checkpoint", required=True, help="a .pt checkpoint or a .safetensors export")
    p.add_argument("--host", default="127.0.0.1", help="0.0.0.0 shares it on your network (no authentication)")
    p.add_argument("--port", type=PORT, default=8000, help="0 picks any free port")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from .explorer import serve

    try:
        serve(args.checkpoint, args.host, args.port, open_browser=args.open)
    except OSError as e:  # raised by bind(): the port is taken or the address is not this machine's
        raise ConfigError(f"cannot listen on {args.host}:{args.port} ({e.strerror}); pick another "
                          f"--port, or --port 0 for any free one") from None
    return 0
