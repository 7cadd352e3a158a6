"""Seconds per LIDnet step (T1, T2, T3, simultaneous) for each detector backbone.

    python benchmarks/lidnet_step.py                                  # CPU: 96 px, batch 4, the light detector
    python benchmarks/lidnet_step.py --sizes 512 --batch 8 --detector paper --device cuda

For each backbone (``resnet50_fpn``, ``resnet18_fpn``, ``mobilenet_v3_fpn``),
image size and batch: the median seconds of one step of each phase of
:class:`ldct_nb.train.lidnet.LidnetSteps` (T1: detector on NDCT; T2: the
denoiser on eq. 8 with the detector frozen, ROI perceptual and detection
losses; T3: detector on the frozen denoiser's output; a simultaneous step: T2
and a detector step on the same batch), on random images with two lesion boxes
each. ``--detector light`` is the CPU profile's detector (FPN 64 channels, box
head 256, 128 sampled ROIs, 300 proposals); ``paper`` is torchvision's sizes
(FPN 256, box head 1024, 512 ROIs, 2000 / 1000 proposals). The denoiser is
``--method`` (CPCE by default) with ``--model`` keywords as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

LIGHT = dict(fpn_channels=64, representation_size=256, box_batch_size_per_image=128, proposals_per_image=300)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", nargs="+", default=["resnet18_fpn", "mobilenet_v3_fpn", "resnet50_fpn"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[96])
    ap.add_argument("--batch", type=int, nargs="+", default=[4])
    ap.add_argument("--detector", choices=["light", "paper"], default="light")
    ap.add_argument("--method", default="cpce")
    ap.add_argument("--model", default='{"width": 16}', help="denoiser keywords (JSON)")
    ap.add_argument("--phases", nargs="+", default=["T1", "T2", "T3", "simultaneous"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    from ldct_nb.env import select_device
    from ldct_nb.models.profile import time_call
    from ldct_nb.train.lidnet import LidnetConfig, LidnetSteps

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = select_device(args.device)
    model = json.loads(args.model)
    det_kw = LIGHT if args.detector == "light" else {}
    print(f"device {dev}, threads {torch.get_num_threads()}, detector sizes: {args.detector} {det_kw}, "
          f"denoiser {args.method} {model}, K = 5, ROI level '0'")
    print("| backbone | size | batch | " + " | ".join(f"{p} s/step" for p in args.phases) + " |")
    print("|---|---|---|" + "---|" * len(args.phases))
    for backbone in args.backbones:
        for size in args.sizes:
            for batch in args.batch:
                cfg = LidnetConfig(kind="simultaneous", method=args.method, model=model, batch_size=batch,
                                   detector={"backbone": backbone, **det_kw})
                torch.manual_seed(0)
                steps = LidnetSteps(cfg, image_size=size, device=dev)
                g = torch.Generator().manual_seed(0)
                ndct = torch.rand(batch, 1, size, size, generator=g).mul(0.2).add(0.3).to(dev)
                ldct = (ndct + 0.05 * torch.randn(ndct.shape, generator=g).to(dev)).clamp(0, 1)
                s = size / 8
                boxes = torch.tensor([[s, s, 2.2 * s, 2.4 * s], [4 * s, 5 * s, 5.5 * s, 6 * s]], device=dev)
                targets = [{"boxes": boxes, "labels": torch.ones(2, dtype=torch.int64, device=dev)} for _ in range(batch)]
                row = []
                for phase in args.phases:
                    sec = time_call(lambda: steps.step(phase, ldct, ndct, targets), repeats=args.repeats,
                                    warmup=args.warmup, device=dev)
                    row.append(f"{sec:.3f}")
                print(f"| {backbone} | {size} | {batch} | " + " | ".join(row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
