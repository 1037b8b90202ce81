"""Tests of facegan/training/."""
