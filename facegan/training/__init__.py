"""Training a GAN: the loop, the step, losses, augmentation, EMA, resume, and the end-of-epoch pieces.

May import: facegan.eval and everything below it; never facegan.commands.
"""
