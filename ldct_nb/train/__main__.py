"""``python -m ldct_nb.train CONFIG.yaml [--run-dir DIR] [--retrain]``: train one run.

Under ``torchrun --nproc_per_node N -m ldct_nb.train CONFIG.yaml --run-dir DIR``
the global batch is split over the N processes. Exit status 2 for a bad
config or data (the message names the key or file), 0 when the run is done.
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ldct_nb.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", help="training config (YAML); see ldct_nb.train.config")
    ap.add_argument("--run-dir", default="runs/cpu", help="run folder holding the data cache (default runs/cpu)")
    ap.add_argument("--retrain", action="store_true", help="start over even if a checkpoint exists")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    from ldct_nb.train import train
    from ldct_nb.train.distributed import run_cli

    return run_cli(lambda: train(args.config, args.run_dir, retrain=args.retrain, progress=not args.no_progress))


if __name__ == "__main__":
    sys.exit(main())
