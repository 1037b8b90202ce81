"""Training throughput: facegan's step (fp32 and bf16) vs the canonical recipe, and the data path alone.

The reference is the PyTorch DCGAN tutorial's loop: torchvision ImageFolder with
Resize/CenterCrop/ToTensor/Normalize decoded by PIL per batch (DataLoader, 2 workers),
a Sigmoid discriminator with BCELoss, plain Adam, fp32, `.item()` every step. Both sides
use the same architecture (facegan.nets.models) and batch size; only the path around it differs.
facegan's side is the training loop's own step (bench.protocol.step_rate: step.GAN + make_step,
EMA, augmentation, penalties as the config says), timed in fp32 and, where the device has native
bf16, in bf16 autocast, one after the other in this process. The `quality` and `cpu` presets have rows of their own.

Run from the repo root:
    .venv/bin/python -m bench.speed.throughput [--steps 8] [--device auto] [--faces ZIP]
docs/performance.md's table is `--steps 32 --warmup 4`: at 8 steps the narrow `cpu` row reads low.
Prints a table and writes bench/results/throughput.json. Uses the CelebA subset (bench.protocol:
--faces, $FACEGAN_FACES or the default path) when there is one, else a folder of synthetic faces.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench.protocol import RESULTS, add_faces_option, extract_faces, faces_zip, machine, step_rate
from facegan.config import PRESETS, TrainConfig
from facegan.data.images import FaceBatches, cached_image_array
from facegan.nets.models import build_models
from facegan.utils import accel
from facegan.utils.accel import resolve_device

CASES = {
    "64px, conv_dim 64, batch 128": dict(image_size=64, conv_dim=64, batch_size=128),
    "32px, course net (conv_dim 32), batch 64": dict(image_size=32, conv_dim=32, batch_size=64),
    "quality preset, 64px, batch 64": PRESETS["quality"],
    "cpu preset, 64px, batch 64": PRESETS["cpu"],
}


def image_root(work: Path, faces: Path | None) -> tuple[Path, str]:
    """A folder ImageFolder accepts: root/<class>/*.jpg."""
    if faces is not None:
        return extract_faces(faces, work).parent, "CelebA subset, 6,000 JPEGs"
    from facegan.data.synthetic import write_face_folder
    write_face_folder(work / "root/faces", 4096, size=64)
    return work / "root", "synthetic faces, 4,096 PNGs"


# ---------------------------------------------------------------- the reference (tutorial)

def tutorial_loader(root: Path, image_size: int, batch_size: int):
    import torchvision.datasets as dset
    import torchvision.transforms as transforms
    dataset = dset.ImageFolder(root=str(root), transform=transforms.Compose([
        transforms.Resize(image_size), transforms.CenterCrop(image_size), transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=2,
                                       drop_last=True, persistent_workers=True)


def reference_steps(root: Path, case: dict, steps: int, warmup: int, device: torch.device) -> float:
    cfg = TrainConfig(**case, fast=False)
    D, G = build_models(cfg)
    netD, netG = nn.Sequential(D, nn.Sigmoid()).to(device), G.to(device)
    criterion = nn.BCELoss()
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loader = tutorial_loader(root, cfg.image_size, cfg.batch_size)
    done, start = 0, None
    while done < warmup + steps:
        for data, _ in loader:
            if done == warmup:
                start = time.perf_counter()
            real = data.to(device)
            b = real.size(0)
            netD.zero_grad()
            label = torch.full((b,), 1.0, device=device)
            err_real = criterion(netD(real).view(-1), label)
            err_real.backward()
            noise = torch.randn(b, cfg.z_size, 1, 1, device=device)
            fake = netG(noise)
            label.fill_(0.0)
            err_fake = criterion(netD(fake.detach()).view(-1), label)
            err_fake.backward()
            optD.step()
            netG.zero_grad()
            label.fill_(1.0)
            err_g = criterion(netD(fake).view(-1), label)
            err_g.backward()
            optG.step()
            _ = (err_real + err_fake).item(), err_g.item()  # the tutorial logs these every step
            done += 1
            if done == warmup + steps:
                break
    return steps * cfg.batch_size / (time.perf_counter() - start)


# ---------------------------------------------------------------- data path alone

def data_epoch_seconds(root: Path, images: np.ndarray, device: torch.device) -> dict:
    """Seconds for one epoch after a first one, so both sides are warm (workers up, pages cached)."""
    def second_epoch(epoch_iter) -> float:
        for _ in epoch_iter(0):
            pass
        start = time.perf_counter()
        for _ in epoch_iter(1):
            pass
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    loader = tutorial_loader(root, 64, 128)
    folder = second_epoch(lambda epoch: iter(loader))
    batches = FaceBatches(images, 128, device=device, channels_last=True)
    cached = second_epoch(batches.epoch)
    return {"imagefolder_s": folder, "cache_s": cached, "speedup": folder / cached, "n": len(images)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", default="off", help="also time facegan with this torch.compile mode")
    add_faces_option(parser)
    args = parser.parse_args()
    faces = faces_zip(args.faces, required=False)
    device = resolve_device(args.device)
    bf16 = accel.amp_enabled(device, True)
    work = Path(tempfile.mkdtemp(prefix="facegan-bench-"))
    results = {"bf16": bf16, "device": machine(device), "torch": torch.__version__, "steps": args.steps,
               "cases": {}}
    try:
        root, what = image_root(work, faces)
        results["dataset"] = what
        for name, case in CASES.items():
            images = np.asarray(cached_image_array(next(root.iterdir()), case["image_size"], work / "cache",
                                                   progress=False))
            # The tutorial's recipe only for the plain DCGAN rows: the quality preset is not its recipe.
            ref = reference_steps(root, case, args.steps, args.warmup, device) if "loss" not in case else None
            ours, peak = step_rate(images, case, args.steps, args.warmup, device)
            row = {"reference_img_s": ref, "facegan_img_s": ours, "ratio": ours / ref if ref else None,
                   "peak_gib": peak}
            if bf16:
                row["facegan_bf16_img_s"], _ = step_rate(images, case, args.steps, args.warmup, device, amp=True)
                row["bf16_ratio"] = row["facegan_bf16_img_s"] / ref if ref else None
                row["bf16_over_fp32"] = row["facegan_bf16_img_s"] / ours
            if args.compile != "off":
                row["facegan_compiled_img_s"], _ = step_rate(images, case, args.steps, args.warmup,
                                                                 device, args.compile)
            results["cases"][name] = row
        images64 = np.asarray(cached_image_array(next(root.iterdir()), 64, work / "cache", progress=False))
        results["data_path"] = data_epoch_seconds(root, images64, device)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"{results['device']}, torch {results['torch']}, {results['dataset']}, {args.steps} timed steps")
    print(f"{'training step':<44}{'reference':>12}{'facegan fp32':>14}{'ratio':>8}"
          + (f"{'facegan bf16':>14}{'ratio':>8}{'bf16/fp32':>11}" if bf16 else ""))
    for name, r in results["cases"].items():
        ref = f"{r['reference_img_s']:>10.0f}/s" if r["reference_img_s"] else f"{'-':>12}"
        line = f"{name:<44}{ref}{r['facegan_img_s']:>12.0f}/s{_ratio(r['ratio'])}"
        if bf16:
            line += f"{r['facegan_bf16_img_s']:>12.0f}/s{_ratio(r['bf16_ratio'])}{r['bf16_over_fp32']:>10.2f}x"
        print(line + (f"  peak {r['peak_gib']:.2f} GiB" if r["peak_gib"] else ""))
        if "facegan_compiled_img_s" in r:
            print(f"{'  + torch.compile ' + args.compile:<44}{'':>12}{r['facegan_compiled_img_s']:>12.0f}/s")
    d = results["data_path"]
    print(f"data path, one epoch of {d['n']} images at 64px, batch 128: ImageFolder {d['imagefolder_s']:.2f} s, "
          f"cache {d['cache_s']:.3f} s ({d['speedup']:.0f}x)")
    out = RESULTS / "throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


def _ratio(value) -> str:
    return f"{value:>7.2f}x" if value else f"{'-':>8}"


if __name__ == "__main__":
    main()
