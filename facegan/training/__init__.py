"""Training a GAN: the loop, the step, losses, LeCam, augmentation, EMA, resume, the end-of-epoch pieces,
and what a time budget buys (rates.py, autopreset.py and its recipe_fid.json).

May import: facegan.eval and everything below it; never facegan.commands.
"""
