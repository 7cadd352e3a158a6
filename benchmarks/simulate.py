"""Speed of the low-dose CT simulation against scikit-image's radon / iradon.

Run from the repository root::

    .venv/bin/python benchmarks/simulate.py --sizes 256 512
    .venv/bin/python benchmarks/simulate.py --sizes 256 512 --device cuda   # on a GPU machine

For each image size it times, in seconds per slice (median of ``--repeats``
runs after one warm-up run):

(a) ``simulate_ldct`` on one slice (numpy in, numpy out);
(b) ``simulate_pair`` on a batch of ``--batch`` slices with one seed per slice,
    divided by the batch size: both doses (NDCT and LDCT) for one projection;
(c) scikit-image on one slice with the same number of views: ``radon`` +
    Poisson counts + ``-log`` + ``iradon(filter_name="ramp")``, the pipeline of
    :mod:`ldct_nb.data.simulate` written the usual way,

and the ratios (c) / (a) and (c) / (b). The number of views is the image size
(the default of ``simulate_ldct``); at 256 pixels a row with 360 views is added
to compare with the 0.46 s per 256 x 256 slice with 360 views quoted in the
issue. The slice is ``make_phantom(size, 0)``, N0 is 1e5 (1e6 and a quarter of
it for the pair), the pixel size 0.7 mm x 512 / size.

On a shared or busy CPU, torch's intra-op threads can spend most of their time
waiting for each other (small operations then take milliseconds): compare with
``--threads 1``, and quote the machine line printed at the top with the table.

This is a script, not a test: the lead runs it at full size; a quick check that
it works is ``--sizes 64 --repeats 1``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from skimage.transform import iradon, radon

from ldct_nb.data.phantom import make_phantom
from ldct_nb.data.simulate import hu_to_mu, mu_to_hu, simulate_ldct, simulate_pair
from ldct_nb.env import select_device

N0 = 1e5
N0_FULL, DOSE_FRACTION = 1e6, 0.25


def median_seconds(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls, after one warm-up call."""

    def timed() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    timed()  # warm-up: sampling grids, FFT plans, CUDA context
    return statistics.median(timed() for _ in range(repeats))


def skimage_ldct(hu: np.ndarray, n0: float, n_views: int, pixel_size_mm: float, circle: bool,
                 rng: np.random.Generator) -> np.ndarray:
    """The same simulation with scikit-image (one slice, a Python loop over views inside)."""
    theta = np.arange(n_views) * (180.0 / n_views)
    mu_pixel = hu_to_mu(hu.astype(np.float64)) * pixel_size_mm
    sinogram = radon(mu_pixel, theta=theta, circle=circle)
    counts = np.maximum(rng.poisson(n0 * np.exp(-sinogram)), 1.0)
    noisy = -np.log(counts / n0)
    mu = iradon(noisy, theta=theta, filter_name="ramp", circle=circle, output_size=hu.shape[0])
    return mu_to_hu(mu / pixel_size_mm).astype(np.float32)


def bench_size(size: int, n_views: int, args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    """Seconds per slice of (a), (b) and (c) at one size and number of views."""
    hu = make_phantom(size, 0).hu
    batch = np.stack([make_phantom(size, s).hu for s in range(args.batch)])
    opts = dict(pixel_size_mm=0.7 * 512 / size, n_views=n_views, circle=args.circle, device=device)
    rng = np.random.default_rng(0)
    ours = median_seconds(lambda: simulate_ldct(hu, N0, seed=0, **opts), args.repeats, device)
    pair = median_seconds(
        lambda: simulate_pair(batch, n0_full=N0_FULL, dose_fraction=DOSE_FRACTION, seed=list(range(args.batch)),
                              **opts),
        args.repeats, device,
    ) / args.batch
    sk = median_seconds(
        lambda: skimage_ldct(hu, N0, n_views, opts["pixel_size_mm"], args.circle, rng), args.repeats,
        torch.device("cpu"),
    )
    return {"ours": ours, "pair": pair, "skimage": sk}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="image sizes (pixels across)")
    parser.add_argument("--batch", type=int, default=8, help="slices per simulate_pair call for (b)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median reported)")
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice; 1 avoids spinning on a busy machine)")
    parser.add_argument("--circle", action="store_true", help="project only the inscribed disc (both methods)")
    args = parser.parse_args(argv)
    for name in ("batch", "repeats", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if min(args.sizes) < 8:
        parser.error(f"--sizes must be >= 8, got {args.sizes}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device.strip().lower() == "auto":  # not MPS: the simulation draws counts in float64
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = select_device(args.device)
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads, "
          f"device {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    print(f"batch {args.batch}, median of {args.repeats} after one warm-up, circle={args.circle}; "
          "seconds per slice; (b) makes both doses from one projection")
    header = (f"{'size':>5} {'views':>5} {'(a) ours 1 slice':>17} {'(b) ours pair/slice':>20} "
              f"{'(c) skimage':>12} {'(c)/(a)':>8} {'(c)/(b)':>8}")
    print(header)
    print("-" * len(header))
    rows = [(size, size) for size in args.sizes]
    if 256 in args.sizes:
        rows.insert(rows.index((256, 256)) + 1, (256, 360))
    for size, n_views in rows:
        t = bench_size(size, n_views, args, device)
        print(f"{size:>5} {n_views:>5} {t['ours']:>17.4f} {t['pair']:>20.4f} {t['skimage']:>12.4f} "
              f"{t['skimage'] / t['ours']:>8.1f} {t['skimage'] / t['pair']:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
