"""Tests of facegan/eval/."""
