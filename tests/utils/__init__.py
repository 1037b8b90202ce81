"""Tests of facegan/utils/."""
