"""Tests of facegan/nets/."""
