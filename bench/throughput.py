"""Training throughput: facegan's step (fp32 and bf16) vs the canonical recipe, and the data path alone.

The reference is the PyTorch DCGAN tutorial's loop: torchvision ImageFolder with
Resize/CenterCrop/ToTensor/Normalize decoded by PIL per batch (DataLoader, 2 workers),
a Sigmoid discriminator with BCELoss, plain Adam, fp32, `.item()` every step. Both sides
use the same architecture (facegan.nets.models) and batch size; only the path around it differs.
facegan's side is the training loop's own step (step.GAN + make_step: EMA, augmentation,
penalties as the config says), timed in fp32 and, where the device has native bf16, in bf16
autocast, one after the other in this process. The `quality` and `cpu` presets have rows of their own.

Run from the repo root:  .venv/bin/python bench/throughput.py [--steps 8] [--device auto]
docs/performance.md's table is `--steps 32 --warmup 4`: at 8 steps the narrow `cpu` row reads low.
Prints a table and writes bench/results/throughput.json. Uses the CelebA subset in
../shared/data when present, else a folder of synthetic faces.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from facegan.config import PRESETS, TrainConfig  # noqa: E402
from facegan.data.images import FaceBatches, cached_image_array  # noqa: E402
from facegan.generate.sample import sample_z  # noqa: E402
from facegan.nets.models import build_models  # noqa: E402
from facegan.training.distributed import Dist  # noqa: E402
from facegan.training.step import GAN, make_step  # noqa: E402
from facegan.utils import accel  # noqa: E402

SUBSET = ROOT.parent / "shared/data/processed-celeba-small-6k.zip"
CASES = {
    "64px, conv_dim 64, batch 128": dict(image_size=64, conv_dim=64, batch_size=128),
    "32px, course net (conv_dim 32), batch 64": dict(image_size=32, conv_dim=32, batch_size=64),
    "quality preset, 64px, batch 64": PRESETS["quality"],
    "cpu preset, 64px, batch 64": PRESETS["cpu"],
}


def image_root(work: Path) -> tuple[Path, str]:
    """A folder ImageFolder accepts: root/<class>/*.jpg."""
    if SUBSET.is_file():
        import helper
        folder = helper.download_extract(data_dir=str(work), zip_path=str(SUBSET), progress=False)
        return folder.parent, "CelebA subset, 6,000 JPEGs"
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


# ---------------------------------------------------------------- facegan's path

def facegan_steps(images: np.ndarray, case: dict, steps: int, warmup: int, device: torch.device,
                  compile_mode: str = "off", amp: bool = False, progress: float | None = None) -> tuple[float, float]:
    """Images/s and peak GiB of `steps` training steps; `progress` pins the run's progress
    (0..1) the step sees, e.g. a progressive run's resolution; by default it advances."""
    cfg = TrainConfig(**case, compile=compile_mode, amp=amp)
    accel.setup_backends(device, cfg.fast)
    gan = GAN.build(cfg, device)
    step = make_step(cfg, gan, Dist())
    batches = FaceBatches(images, cfg.batch_size, device=device, channels_last=cfg.fast)
    z_gen = torch.Generator(device=device).manual_seed(1)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    done, epoch, start, last = 0, 0, None, None
    total = warmup + steps
    while done < total:
        for real in batches.epoch(epoch):
            if done == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            z = sample_z(len(real) * cfg.g_steps, cfg.z_size, z_gen, device)  # a batch per G update, as train.py draws
            last = step(real, None, z, done, done / total if progress is None else progress)
            done += 1
            if done == total:
                break
        epoch += 1
    float(last["d_loss"])  # wait for the device to finish
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0.0
    return steps * cfg.batch_size / seconds, peak


def config_rate(cfg: TrainConfig, images: np.ndarray, steps: int, warmup: int,
                progress: float | None = None) -> float:
    """Images/s of the training step `cfg` describes (its precision included), on the CPU."""
    case = {k: v for k, v in vars(cfg).items() if k not in ("compile", "amp")}
    rate, _ = facegan_steps(images, case, steps, warmup, torch.device("cpu"), amp=cfg.amp, progress=progress)
    return rate


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
    args = parser.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    bf16 = accel.amp_enabled(device, True)
    work = Path(tempfile.mkdtemp(prefix="facegan-bench-"))
    results = {"bf16": bf16, "device": torch.cuda.get_device_name() if device.type == "cuda"
               else f"CPU ({platform.processor() or platform.machine()}), {torch.get_num_threads()} threads",
               "torch": torch.__version__, "steps": args.steps, "cases": {}}
    try:
        root, what = image_root(work)
        results["dataset"] = what
        for name, case in CASES.items():
            images = np.asarray(cached_image_array(next(root.iterdir()), case["image_size"], work / "cache",
                                                   progress=False))
            # The tutorial's recipe only for the plain DCGAN rows: the quality preset is not its recipe.
            ref = reference_steps(root, case, args.steps, args.warmup, device) if "loss" not in case else None
            ours, peak = facegan_steps(images, case, args.steps, args.warmup, device)
            row = {"reference_img_s": ref, "facegan_img_s": ours, "ratio": ours / ref if ref else None,
                   "peak_gib": peak}
            if bf16:
                row["facegan_bf16_img_s"], _ = facegan_steps(images, case, args.steps, args.warmup, device, amp=True)
                row["bf16_ratio"] = row["facegan_bf16_img_s"] / ref if ref else None
                row["bf16_over_fp32"] = row["facegan_bf16_img_s"] / ours
            if args.compile != "off":
                row["facegan_compiled_img_s"], _ = facegan_steps(images, case, args.steps, args.warmup,
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
    out = ROOT / "bench/results/throughput.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


def _ratio(value) -> str:
    return f"{value:>7.2f}x" if value else f"{'-':>8}"


if __name__ == "__main__":
    main()
