"""`facegan sample` and `facegan interpolate`: faces from a checkpoint or export, as a grid, a
folder of PNGs, or a latent walk (grid and looping GIF)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import TONE_CATEGORIES
from ..errors import ConfigError
from .argtypes import FACES, SEED, TRUNCATION, UPSCALE, DefaultsFormatter, number, seed_list, seed_range, whole

# Image names that are not PNG: `sample --out g.jpg` once made a folder called g.jpg/.
OTHER_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")


def add_sample_parsers(sub) -> None:
    p = sub.add_parser("sample", help="faces from a checkpoint or export: a grid PNG or a folder of PNGs",
                       formatter_class=DefaultsFormatter)
    p.add_argument("--checkpoint", required=True, help="a .pt checkpoint (EMA weights when present) or a "
                                                       ".safetensors export")
    p.add_argument("--n", type=FACES, default=64, help="how many faces")
    p.add_argument("--seed", type=SEED, default=0, help="face i is seed+i, the same face every time")
    p.add_argument("--truncation", type=TRUNCATION, default=None,
                   help="redraw latent coordinates beyond this (e.g. 1.5): less variety, fewer failures")
    p.add_argument("--tone", choices=(*TONE_CATEGORIES, "all"), default=None, type=lambda s: s.replace("-", " "),
                   help="only for a generator trained with --condition tone: every face in this skin-tone "
                        "category (each seed keeps the rest of its face), or all: a grid row per category; "
                        "default: the six categories in equal shares, drawn from each seed")
    p.add_argument("--out", required=True, help="grid.png for a grid, or a folder for one PNG per face")
    p.add_argument("--nrow", type=FACES, default=8, help="faces per grid row")
    p.add_argument("--upscale", type=UPSCALE, default=None,
                   help="nearest-neighbour enlargement, for viewing (default: 2 for a grid; one PNG per face "
                        "stays at the generator's own resolution, as FID tools and other uses want)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("interpolate", help="a latent walk between seeds: a grid PNG and a looping GIF",
                       formatter_class=DefaultsFormatter)
    p.add_argument("--checkpoint", required=True, help="a .pt checkpoint or a .safetensors export")
    p.add_argument("--seeds", required=True, type=seed_list, help="faces to walk through, e.g. 1,2,3 (the faces "
                                                  "`sample --seed 1` puts first)")
    p.add_argument("--steps", type=whole(2, 1000), default=30, help="frames from one face to the next, both included")
    p.add_argument("--truncation", type=TRUNCATION, default=None)
    p.add_argument("--out", required=True, help="walk writes walk.png and walk.gif")
    p.add_argument("--frame-seconds", type=number(0.01, 60, "seconds"), default=0.08, help="GIF frame duration")
    p.add_argument("--upscale", type=UPSCALE, default=2, help="nearest-neighbour enlargement of the grid and GIF")
    p.set_defaults(func=cmd_interpolate)


def cmd_sample(args: argparse.Namespace) -> int:
    from ..generate.export import load_generator
    from ..generate.sample import faces_from_seeds, image_grid, save_png

    seeds, out = seed_range(args.seed, args.n), Path(args.out)
    layout = sample_layout(out)  # refused before the generator loads, not after the work
    # Grids are for looking at; one PNG per face feeds FID tools and the like, at G's own size.
    upscale = args.upscale or (2 if layout == "grid" else 1)
    G = load_generator(args.checkpoint)
    label = tone_class(G, args.tone)  # refuses --tone for a generator trained without tones
    tones = G.n_classes if args.tone == "all" else 1
    fits(f"--n {args.n} --upscale {upscale}", sample_bytes(len(seeds) * tones, face_size(G), layout,
                                                           len(seeds) if tones > 1 else args.nrow, upscale),
         "use a smaller --n or --upscale" + (", or a folder --out for one PNG per face" if layout == "grid" else ""))
    if args.tone == "all":
        return sample_every_tone(G, seeds, args, out, layout, upscale)
    faces = faces_from_seeds(G, seeds, args.truncation, label)
    if layout == "grid":
        save_png(out, image_grid(faces, nrow=args.nrow), upscale=upscale)
        print(f"wrote a grid of {args.n} faces (seeds {seeds[0]}..{seeds[-1]}, row by row, {upscale}x) to {out}")
    else:
        for seed, face in zip(seeds, faces):
            save_png(out / f"seed{seed:06d}.png", face, upscale=upscale)
        print(f"wrote {args.n} faces ({face.shape[0]} px) to {out}/seed{seeds[0]:06d}.png .. seed{seeds[-1]:06d}.png")
    return 0


# ---------------------------------------------------------------- will the images fit in memory?
# Estimated from the sizes alone, before any face is drawn: uint8 faces, the grid, its
# nearest-neighbour enlargement and the encoded file (about as large again), GIF frames each
# enlarged as a PIL image.

def face_size(G) -> int:
    if getattr(G, "image_size", None):
        return int(G.image_size)
    import torch

    with torch.no_grad():  # a generator that does not say: one face tells
        return int(G(torch.zeros(1, G.z_size)).shape[-1])


def grid_bytes(n: int, size: int, nrow: int, upscale: int, pad: int = 2) -> int:
    rows = -(-n // nrow)
    return (rows * (size + pad) + pad) * (min(nrow, n) * (size + pad) + pad) * 3 * (1 + 2 * upscale**2)


def sample_bytes(n: int, size: int, layout: str, nrow: int, upscale: int) -> int:
    faces = n * size * size * 3
    return faces + (grid_bytes(n, size, nrow, upscale) if layout == "grid" else 3 * faces // n * upscale**2)


def walk_bytes(n_seeds: int, steps: int, size: int, upscale: int) -> int:
    face = size * size * 3
    frames = n_seeds * (steps - 1)  # the looping GIF
    return ((2 * n_seeds - 1) * steps * face + grid_bytes((n_seeds - 1) * steps, size, steps, upscale)
            + frames * face * (1 + upscale**2 * 4 // 3))


def fits(what: str, needed: int, fix: str) -> None:
    """Refuse, in one line with the estimate and the machine's RAM, output that cannot fit."""
    from ..utils.accel import gib, ram_bytes

    ram = ram_bytes()
    if ram is not None and needed > ram:
        raise ConfigError(f"{what}: the images need about {gib(needed)} of memory but this machine has "
                          f"{gib(ram)} of RAM; {fix}")


def sample_layout(out: Path) -> str:
    """"grid" for --out NAME.png, "folder" for one PNG per face; anything ambiguous refused."""
    if out.suffix.lower() == ".png" and not out.is_dir():
        return "grid"
    if out.suffix.lower() in OTHER_IMAGE_SUFFIXES:
        raise ConfigError(f"--out {out}: grids are written as PNG; use {out.with_suffix('.png')}, or a "
                          f"folder name for one PNG per face")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give NAME.png for a grid, or a folder for one PNG per face")
    return "folder"


def tone_class(G, tone: str | None) -> int | None:
    """--tone as G's class index (None for all); refused for a generator trained without tones."""
    if tone is None:
        return None
    if not getattr(G, "n_classes", 0):
        raise ConfigError(f"--tone {tone.replace(' ', '-')} needs a generator trained with --condition tone; "
                          f"this one was not, so drop --tone")
    return None if tone == "all" else TONE_CATEGORIES.index(tone)


def sample_every_tone(G, seeds: list[int], args: argparse.Namespace, out: Path, layout: str, upscale: int) -> int:
    """--tone all: each seed in every tone category, a grid row per tone (lightest first)."""
    import numpy as np

    from ..generate.sample import faces_from_seeds, image_grid, save_png

    rows = [faces_from_seeds(G, seeds, args.truncation, k) for k in range(G.n_classes)]
    if layout == "grid":
        save_png(out, image_grid(np.concatenate(rows), nrow=len(seeds)), upscale=upscale)
        print(f"wrote {out}: a row per tone ({', '.join(TONE_CATEGORIES)}), a column per seed "
              f"({seeds[0]}..{seeds[-1]})")
        return 0
    for tone, faces in zip(TONE_CATEGORIES, rows):
        for seed, face in zip(seeds, faces):
            save_png(out / f"seed{seed:06d}-{tone.replace(' ', '-')}.png", face, upscale=upscale)
    print(f"wrote {len(seeds) * len(rows)} faces to {out}/seedNNNNNN-TONE.png")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from ..generate.export import load_generator
    from ..generate.sample import image_grid, save_gif, save_png, walk_faces

    G = load_generator(args.checkpoint)
    seeds = args.seeds
    fits(f"--seeds ({len(seeds)} of them) --steps {args.steps} --upscale {args.upscale}",
         walk_bytes(len(seeds), args.steps, face_size(G), args.upscale), "use fewer --seeds, --steps or --upscale")
    out = Path(args.out)
    out = out.with_suffix("") if out.suffix.lower() in (".png", ".gif") else out
    grid_path, gif_path = out.parent / (out.name + ".png"), out.parent / (out.name + ".gif")
    rows = walk_faces(G, seeds, args.steps, args.truncation)
    save_png(grid_path, image_grid(rows.reshape(-1, *rows.shape[2:]), nrow=args.steps), upscale=args.upscale)
    # The animation returns to the first face, so it loops without a jump.
    cycle = walk_faces(G, seeds, args.steps, args.truncation, loop=True)[:, :-1]
    save_gif(gif_path, cycle.reshape(-1, *cycle.shape[2:]), seconds_per_frame=args.frame_seconds,
             upscale=args.upscale)
    print(f"wrote {grid_path} (one row per pair of seeds) and {gif_path} ({cycle.shape[0] * cycle.shape[1]} frames)")
    return 0
