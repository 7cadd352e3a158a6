"""``python -m ldct_nb.eval RUN_DIR``: the evaluation tables without the notebook.

Reads notebook 04's ``RUN_DIR/results/training.json``, evaluates every run on the
test split and writes the tables, paired tests, CNR, per-tissue error and
radiomics as CSV and JSON into ``RUN_DIR/results/`` (the files notebook 06
shows). Exit status 2 with a message when the run folder lacks what it needs.
"""
from __future__ import annotations

import argparse
import sys

from ldct_nb.errors import LdctError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ldct_nb.eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", help="run folder (holds data/ and results/training.json)")
    ap.add_argument("--split", default="test", help="split to evaluate (default test)")
    ap.add_argument("--max-slices", type=int, default=None, help="evaluate the first N slices only")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    from ldct_nb.env import select_device
    from ldct_nb.eval.report import ascon_evaluation, write_results
    from ldct_nb.eval.tables import format_table

    try:
        ev = ascon_evaluation(args.run_dir, split=args.split, device=select_device(args.device),
                              max_slices=args.max_slices)
        paths = write_results(ev, args.run_dir)
    except LdctError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, table in ev.tables.items():
        print(f"\n## {name}\n")
        print(format_table(table).to_markdown() if _has_tabulate() else format_table(table).to_string())
    print("\nwritten:\n" + "\n".join(f"  {p}" for p in paths))
    return 0


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
