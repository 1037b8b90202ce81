"""Small helpers every layer uses: atomic file writes, progress bars, random streams, devices.

May import: facegan.errors only.
"""
