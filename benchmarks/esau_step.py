"""ESAU-Net speed and memory: seconds per step and images per second, forward and
training (forward, MSE, backward, Adam step), for both presets and several sizes.

    python benchmarks/esau_step.py                          # paper + official, 128 and 256, batch 4, auto device
    python benchmarks/esau_step.py --sizes 512 --batch 1 4 --device cuda --amp --compile
    python benchmarks/esau_step.py --layout both            # channels-last against NCHW

Each (preset, size, batch, layout) runs in a fresh subprocess so that its peak
memory is its own: the peak resident set size of the process on CPU
(``ru_maxrss``, which includes the Python interpreter and torch, about 0.3 GB)
and ``torch.cuda.max_memory_allocated`` on GPU; the bytes autograd saves for
the backward pass are printed too. ``--amp`` runs under bf16 autocast (CUDA),
``--compile`` wraps the model in ``torch.compile``. The times are medians over
``--repeats`` steps after ``--warmup`` steps.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import torch


def measure(preset: str, size: int, batch: int, layout: str, device: str, amp: bool, compile_: bool,
            repeats: int, warmup: int, threads: int | None) -> dict:
    from ldct_nb.env import select_device
    from ldct_nb.models.esau_net import esau_net_official, esau_net_paper
    from ldct_nb.models.profile import saved_activation_bytes, time_call

    if threads:
        torch.set_num_threads(threads)
    dev = select_device(device)
    torch.manual_seed(0)
    build = esau_net_official if preset == "official" else esau_net_paper
    net = build(channels_last=layout == "channels_last").to(dev)
    model = torch.compile(net) if compile_ else net
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.rand(batch, 1, size, size, device=dev)
    y = torch.rand(batch, 1, size, size, device=dev)
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp)

    def forward():
        with torch.no_grad(), autocast:
            model(x)

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = torch.nn.functional.mse_loss(model(x).float(), y)
        loss.backward()
        opt.step()

    t_fwd = time_call(forward, repeats=repeats, warmup=warmup, device=dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t_step = time_call(step, repeats=repeats, warmup=warmup, device=dev)
    saved = saved_activation_bytes(step)
    if dev.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(dev) / 2**20
        kind = "CUDA peak allocated"
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        kind = "process peak RSS"
    return {"preset": preset, "size": size, "batch": batch, "layout": layout, "device": str(dev), "amp": amp,
            "compile": compile_, "threads": torch.get_num_threads(), "forward_s": t_fwd, "train_step_s": t_step,
            "forward_img_per_s": batch / t_fwd, "train_img_per_s": batch / t_step,
            "peak_memory_mb": peak_mb, "memory_kind": kind, "saved_activations_mb": saved / 2**20}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--batch", type=int, nargs="+", default=[4])
    ap.add_argument("--presets", nargs="+", default=["paper", "official"], choices=["paper", "official"])
    ap.add_argument("--layout", default="channels_last", choices=["channels_last", "nchw", "both"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None, help="also write the rows as JSON")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: one configuration, JSON out
    args = ap.parse_args(argv)
    if args.one:
        cfg = json.loads(args.one)
        print(json.dumps(measure(**cfg)))
        return 0
    layouts = ["channels_last", "nchw"] if args.layout == "both" else [args.layout]
    rows = []
    print("| preset | size | batch | layout | forward s | forward img/s | train step s | train img/s | peak MB | saved act. MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        for batch in args.batch:
            for preset in args.presets:
                for layout in layouts:
                    cfg = dict(preset=preset, size=size, batch=batch, layout=layout, device=args.device, amp=args.amp,
                               compile_=args.compile, repeats=args.repeats, warmup=args.warmup, threads=args.threads)
                    done = subprocess.run([sys.executable, __file__, "--one", json.dumps(cfg)],
                                          capture_output=True, text=True)
                    if done.returncode:
                        print(f"| {preset} | {size} | {batch} | {layout} | failed: {done.stderr.strip().splitlines()[-1]} |")
                        continue
                    r = json.loads(done.stdout.strip().splitlines()[-1])
                    rows.append(r)
                    print(f"| {preset} | {size} | {batch} | {layout} | {r['forward_s']:.4f} | {r['forward_img_per_s']:.1f} | "
                          f"{r['train_step_s']:.4f} | {r['train_img_per_s']:.2f} | {r['peak_memory_mb']:.0f} | "
                          f"{r['saved_activations_mb']:.0f} |", flush=True)
    if rows:
        r0 = rows[0]
        print(f"device {r0['device']}, threads {r0['threads']}, amp {r0['amp']}, compile {r0['compile']}; "
              f"peak memory: {r0['memory_kind']}")
    if args.layout == "both":
        for r in rows:
            if r["layout"] == "channels_last":
                other = next((o for o in rows if o["layout"] == "nchw" and all(o[k] == r[k] for k in ("preset", "size", "batch"))), None)
                if other:
                    print(f"{r['preset']} {r['size']}px batch {r['batch']}: channels-last training step / NCHW = "
                          f"{r['train_step_s'] / other['train_step_s']:.2f}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
