"""Small helpers every layer uses: atomic file writes, bounded JSON reads, progress bars, random streams, devices.

May import: facegan.errors only.
"""
