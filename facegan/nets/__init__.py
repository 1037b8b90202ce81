"""The networks: the DCGAN paper's, the seed projects' own, residual and progressive ones, and their init.

May import: facegan.config, facegan.errors, facegan.utils.
"""
