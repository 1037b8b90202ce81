"""Tests of facegan/generate/."""
