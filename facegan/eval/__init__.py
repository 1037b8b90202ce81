"""Measuring and showing a run: FID/KID/SWD, the skin-tone audit, metrics.jsonl, plots and report.html.

May import: facegan.generate, facegan.nets, facegan.data and everything below them; never facegan.training.
"""
