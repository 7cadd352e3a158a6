"""Training-step cost of ASCON against ESAU-Net, and the data pipeline's rate.

    python benchmarks/train_step.py                                   # 128 and 256 px, batch 4, both presets
    python benchmarks/train_step.py --sizes 512 --batch 1 4 --device cuda --amp

For each size, batch and preset: seconds per step of ESAU-Net alone (its
preset's MSE + SSIM loss) and of one ASCON iteration (MAC-Net step, EMA update,
denoiser step; MAC-Net at the paper's width and heads unless ``--mac-width`` is
given), their ratio (the issue's goal: at most 2.0), and the rate at which
:class:`~ldct_nb.train.batches.BatchStream` delivers batches of that size from a
synthetic cache (the goal: at least 5 times the fastest training step). Medians
over ``--repeats`` steps after ``--warmup``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile

import torch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--batch", type=int, nargs="+", default=[4])
    ap.add_argument("--presets", nargs="+", default=["paper", "official"])
    ap.add_argument("--mac-width", type=float, default=1.0)
    ap.add_argument("--sampling", default="mayo2016")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-data", action="store_true", help="skip the data pipeline measurement")
    args = ap.parse_args(argv)
    from ldct_nb.env import select_device
    from ldct_nb.models.profile import time_call
    from ldct_nb.train import make_step

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = select_device(args.device)
    print(f"device {dev}, threads {torch.get_num_threads()}, amp {args.amp}, MAC-Net width {args.mac_width}, "
          f"sampling {args.sampling}")
    print("| preset | size | batch | ESAU-Net s/step | ASCON s/step | ASCON / ESAU-Net | data batches/s | data / fastest step |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        rate = None if args.no_data else data_rate(size, max(args.batch))
        for batch in args.batch:
            x = torch.rand(batch, 1, size, size, device=dev)
            y = (x + 0.02 * torch.randn_like(x)).clamp(0, 1)
            for preset in args.presets:
                times = {}
                for method, extra in (("esau_net", {}), ("ascon", {"ascon": {"mac_width": args.mac_width,
                                                                                "sampling": args.sampling}})):
                    torch.manual_seed(0)
                    step = make_step(method, preset, device=dev, amp=args.amp, **extra)
                    gen = torch.Generator(device=dev).manual_seed(0)
                    times[method] = time_call(lambda: step(x, y, gen), repeats=args.repeats, warmup=args.warmup,
                                              device=dev)
                ratio = times["ascon"] / times["esau_net"]
                data = f"{rate:.1f} | {rate * times['esau_net']:.1f}" if rate else "- | -"
                print(f"| {preset} | {size} | {batch} | {times['esau_net']:.3f} | {times['ascon']:.3f} | {ratio:.2f} | {data} |",
                      flush=True)
    return 0


def data_rate(size: int, batch: int) -> float:
    """Batches per second of whole slices of ``size`` pixels (patch = slice) from a fresh synthetic cache."""
    from ldct_nb.data.cache import open_split
    from ldct_nb.data.manifest import load_manifest
    from ldct_nb.data.stage import prepare_data
    from ldct_nb.train.report import data_rate as rate

    with tempfile.TemporaryDirectory() as tmp:
        prepare_data(load_manifest("synthetic"), tmp, image_size=size, counts={"train": 8, "val": 1, "test": 1},
                     progress=False)
        return rate(open_split(tmp, "train"), batch_size=batch, patch_size=size, steps=20)


if __name__ == "__main__":
    sys.exit(main())
