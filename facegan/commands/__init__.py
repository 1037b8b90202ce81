"""The command line: `facegan <command>`, and the tools behind commands (export aside): serve, sweep, exercise.

May import: anything in facegan.
"""
