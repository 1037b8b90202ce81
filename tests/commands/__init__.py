"""Tests of facegan/commands/."""
