"""Using a generator: latents, samples as images and PNG/GIF files, train_samples.pkl, exported weights.

May import: facegan.nets, facegan.config, facegan.checkpoint, facegan.errors, facegan.utils.
"""
