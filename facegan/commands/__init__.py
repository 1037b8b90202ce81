"""The command line: `facegan <command>`, a module per command (cli.py assembles the parser),
and the tools behind commands (export aside): serve, sweep, exercise.

May import: anything in facegan.
"""
