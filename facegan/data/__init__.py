"""Face images in: folders and their cache, synthetic faces, the CelebA download, skin tone.

May import: facegan.config, facegan.errors, facegan.utils.
"""
SUBMODULES = ("images", "synthetic", "celeba", "download", "unzip", "tone")


def __getattr__(name: str):
    # facegan.data was one module in 0.1; its names live in facegan.data.images now.
    if name.startswith("__") or name in SUBMODULES:
        raise AttributeError(f"module 'facegan.data' has no attribute {name!r}")
    import importlib

    images = importlib.import_module("facegan.data.images")
    if not hasattr(images, name):
        raise AttributeError(f"module 'facegan.data' has no attribute {name!r}")
    from ..moved import warn_moved
    warn_moved("data", ("data.images",))
    return getattr(images, name)
