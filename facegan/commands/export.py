"""`facegan export`: a checkpoint's generator as safetensors plus its config, and as a torch.export
program; the writing itself is facegan/generate/export.py's."""
from __future__ import annotations

import argparse
import json


def add_export_parser(sub) -> None:
    p = sub.add_parser("export", help="write a checkpoint's generator as safetensors plus its config, "
                                      "and as a torch.export program (.pt2) that needs only torch")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="e.g. g.safetensors (g.json and g.pt2 are written beside it)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from ..generate.export import export_generator

    out = export_generator(args.checkpoint, args.out)
    print(f"wrote {out}, {out.with_suffix('.json')} and {out.with_suffix('.pt2')}")
    print(f"sample it with torch alone:  G = torch.export.load({str(out.with_suffix('.pt2'))!r}).module(); "
          f"faces = G(torch.randn(16, {json.loads(out.with_suffix('.json').read_text())['z_size']}))")
    return 0
