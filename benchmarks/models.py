"""Cost of every registered model: parameters, forward FLOPs, forward and
training-step time and memory at 256 x 256 and 512 x 512 (batch 1).

    python benchmarks/models.py                       # all models, 256 and 512, auto device
    python benchmarks/models.py --sizes 64 --models esau_net unet --device cpu

Prints a markdown table and the ESAU-Net training-step time relative to
U-Net; ``--out FILE.json`` also writes the rows. Memory is the CUDA peak on
GPU and the saved-activation bytes on CPU (see ldct_nb.models.profile).
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

from ldct_nb.env import select_device
from ldct_nb.models import available, build, presets
from ldct_nb.models.profile import profile_model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--models", nargs="+", default=available(), choices=available())
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    device = select_device(args.device)
    rows = []
    print(f"device: {device}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    print("| model | size | params | GFLOPs fwd | forward s | train step s | memory MB | memory kind |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        for name in args.models:
            preset = args.preset if args.preset in presets(name) else "paper"
            torch.manual_seed(0)
            try:
                cost = profile_model(build(name, preset), name, size, device=device, repeats=args.repeats)
            except torch.cuda.OutOfMemoryError:
                print(f"| {name} | {size} | - | - | out of memory | - | - | - |")
                torch.cuda.empty_cache()
                continue
            rows.append(cost.as_dict())
            print(f"| {name} | {size} | {cost.params:,} | {cost.gflops_forward:.1f} | {cost.forward_s:.4f} | "
                  f"{cost.train_step_s:.4f} | {cost.memory_mb:.0f} | {cost.memory_kind} |", flush=True)
    for size in args.sizes:
        t = {r["model"]: r["train_step_s"] for r in rows if r["size"] == size}
        if "esau_net" in t and "unet" in t:
            print(f"ESAU-Net training step / U-Net training step at {size}x{size}: {t['esau_net'] / t['unet']:.2f}x")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump({"device": str(device), "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
