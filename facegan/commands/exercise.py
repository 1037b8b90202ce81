"""`facegan exercise`: its arguments and handler; the notebook work is exercise_notebook.py's."""
from __future__ import annotations

import argparse

from .argtypes import DefaultsFormatter


def add_exercise_parser(sub) -> None:
    p = sub.add_parser("exercise", help="write the learner's copy of the course notebook: each solution "
                                        "replaced by a TODO and its hint", formatter_class=DefaultsFormatter)
    p.add_argument("--out", default="dlnd_face_generation_exercise.ipynb",
                   help="the exercise notebook to write (never the solution notebook)")
    p.add_argument("--force", action="store_true",
                   help="replace --out if it exists (your work in it is lost; never the solution notebook)")
    p.add_argument("--notebook", help="the solution notebook (default: dlnd_face_generation.ipynb in this "
                                      "folder, else at the root of the repository facegan runs from)")
    p.set_defaults(func=cmd_exercise)


def cmd_exercise(args: argparse.Namespace) -> int:
    from .exercise_notebook import write_exercise

    out, stubbed = write_exercise(args.out, args.notebook, force=args.force)
    print(f"wrote {out}: the course notebook with its {stubbed} solutions replaced by TODO stubs and hints, "
          f"outputs cleared")
    return 0
