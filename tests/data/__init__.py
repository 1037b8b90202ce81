"""Tests of facegan/data/."""
