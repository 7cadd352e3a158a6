"""Cost of a model: parameters, FLOPs, time and memory of forward / training steps,
and the channel-wise versus spatial self-attention comparison (ASCON's
efficiency claim, section 2.2).

* FLOPs: :class:`torch.utils.flop_counter.FlopCounterMode` (counts matmuls and
  convolutions; a multiply-add is 2 FLOPs).
* Time: :func:`time.perf_counter` around ``repeats`` calls after ``warmup``
  calls (with ``torch.cuda.synchronize`` on GPU).
* Memory: on CUDA, ``torch.cuda.max_memory_allocated`` during the step; on
  CPU, the bytes of the tensors autograd saves for the backward pass (the
  activation memory of a training step, measured with
  ``torch.autograd.graph.saved_tensors_hooks``), because CPU peak-RSS
  counters are process-wide and monotonic.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ldct_nb.errors import ParameterError

__all__ = [
    "count_parameters", "count_flops", "time_call", "saved_activation_bytes", "ModelCost", "profile_model",
    "attention_cost", "spatial_attention_bytes", "cost_table", "attention_scaling",
]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _input(size: int | tuple[int, int], batch: int, device, channels: int = 1) -> torch.Tensor:
    h, w = (size, size) if isinstance(size, int) else size
    if h < 1 or w < 1 or batch < 1:
        raise ParameterError(f"size and batch must be positive, got size={size!r}, batch={batch!r}")
    return torch.rand(batch, channels, h, w, device=device)


def count_flops(model: nn.Module, size: int | tuple[int, int] = 256, batch: int = 1, *, backward: bool = False,
                device="cpu", channels: int = 1) -> int:
    """FLOPs of one forward (and backward, with ``backward=True``) pass at ``size``."""
    x = _input(size, batch, device, channels)
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(x)
        if backward:
            out.float().mean().backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn, *, repeats: int = 3, warmup: int = 1, device="cpu") -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    dev = torch.device(device)
    for _ in range(warmup):
        fn()
    _sync(dev)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(dev)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def saved_activation_bytes(fn) -> int:
    """Bytes of the tensors autograd saves for backward while ``fn()`` runs (each storage once)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        try:
            st = t.untyped_storage()
            seen[st.data_ptr()] = max(seen.get(st.data_ptr(), 0), st.nbytes())
        except (RuntimeError, NotImplementedError):
            seen[id(t)] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return int(sum(seen.values()))


@dataclass
class ModelCost:
    """One row of the cost table."""

    model: str
    size: int
    params: int
    gflops_forward: float
    forward_s: float
    train_step_s: float
    memory_mb: float
    memory_kind: str

    def as_dict(self) -> dict:
        return asdict(self)


def profile_model(model: nn.Module, name: str, size: int = 256, *, batch: int = 1, device="cpu",
                  repeats: int = 3, warmup: int = 1) -> ModelCost:
    """Parameters, forward FLOPs, forward time, training-step time (forward, MSE, backward,
    Adam step) and memory (see the module docstring) at ``batch x 1 x size x size``."""
    dev = torch.device(device)
    model = model.to(dev)
    x = _input(size, batch, dev)
    y = _input(size, batch, dev)
    flops = count_flops(model, size, batch, device=dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def forward():
        with torch.no_grad():
            model(x)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()

    model.train()
    t_fwd = time_call(forward, repeats=repeats, warmup=warmup, device=dev)
    t_step = time_call(step, repeats=repeats, warmup=warmup, device=dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
        step()
        _sync(dev)
        mem, kind = (torch.cuda.max_memory_allocated(dev) - base) / 2**20, "CUDA peak above resident"
    else:
        mem = saved_activation_bytes(lambda: torch.nn.functional.mse_loss(model(x), y)) / 2**20
        kind = "saved activations"
    opt.zero_grad(set_to_none=True)
    return ModelCost(name, size, count_parameters(model), flops / 1e9, t_fwd, t_step, mem, kind)


def spatial_attention_bytes(size: int, heads: int = 1, batch: int = 1, dtype_bytes: int = 4) -> int:
    """Bytes of the HW x HW attention matrices of spatial self-attention (one copy)."""
    hw = size * size
    return batch * heads * hw * hw * dtype_bytes


def attention_cost(kind: str, channels: int, size: int, *, heads: int = 1, device="cpu", repeats: int = 3,
                   max_bytes: float = 2 * 2**30) -> dict:
    """Forward + backward time and memory of one attention layer on ``1 x C x size x size``.

    ``kind``: ``"channel"`` (:class:`~ldct_nb.models.esau_net.ChannelAttention`) or
    ``"spatial"`` (:class:`~ldct_nb.models.esau_net.SpatialAttention`). When the
    HW x HW matrix alone would exceed ``max_bytes`` the layer is not run and the
    row says ``fits=False`` (with the analytic matrix size) instead of exhausting memory.
    """
    from ldct_nb.models.esau_net import ChannelAttention, SpatialAttention

    if kind not in ("channel", "spatial"):
        raise ParameterError(f"kind must be 'channel' or 'spatial', got {kind!r}")
    dev = torch.device(device)
    matrix = spatial_attention_bytes(size, heads) if kind == "spatial" else heads * (channels // heads) ** 2 * 4
    row = {"kind": kind, "size": size, "channels": channels, "heads": heads, "attention_matrix_mb": matrix / 2**20,
           "fits": True, "time_s": math.nan, "memory_mb": math.nan}
    if matrix > max_bytes:
        row["fits"] = False
        return row
    layer = (ChannelAttention(channels, heads) if kind == "channel" else SpatialAttention(channels, heads)).to(dev)
    x = torch.rand(1, channels, size, size, device=dev, requires_grad=True)

    def step():
        layer(x).mean().backward()

    try:
        row["time_s"] = time_call(step, repeats=repeats, warmup=1, device=dev)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
            step()
            _sync(dev)
            row["memory_mb"] = (torch.cuda.max_memory_allocated(dev) - base) / 2**20
        else:
            row["memory_mb"] = saved_activation_bytes(lambda: layer(x).mean()) / 2**20
    except (torch.cuda.OutOfMemoryError, RuntimeError) as exc:
        if "out of memory" not in str(exc).lower() and not isinstance(exc, torch.cuda.OutOfMemoryError):
            raise
        row["fits"] = False
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return row


def cost_table(size: int, *, names: list[str] | None = None, device="cpu", repeats: int = 3,
               progress: bool = False) -> list[dict]:
    """:func:`profile_model` of every registered model (``paper`` preset; ESAU-Net
    in both presets) at ``size``, as a list of row dicts."""
    from ldct_nb.models import available, build

    names = names or available()
    jobs = [(n, p) for n in names for p in (("paper", "official") if n == "esau_net" else ("paper",))]
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc=f"profiling at {size}x{size}")
    rows = []
    for name, preset in jobs:
        torch.manual_seed(0)
        label = f"{name} ({preset})" if name == "esau_net" else name
        rows.append(profile_model(build(name, preset), label, size, device=device, repeats=repeats).as_dict())
    return rows


def attention_scaling(sizes: list[int], *, channels: int = 32, heads: int = 1, spatial_max_size: int = 128,
                      device="cpu", repeats: int = 3, max_bytes: float = 2 * 2**30) -> list[dict]:
    """:func:`attention_cost` of channel-wise and spatial attention at every size;
    spatial attention above ``spatial_max_size`` (or whose HW x HW matrix exceeds
    ``max_bytes``) is reported analytically with ``run=False``."""
    rows = []
    for size in sizes:
        for kind in ("channel", "spatial"):
            limit = max_bytes if (kind == "channel" or size <= spatial_max_size) else 0
            row = attention_cost(kind, channels, size, heads=heads, device=device, repeats=repeats, max_bytes=limit)
            row["run"] = not math.isnan(row["time_s"])
            if kind == "spatial" and not row["run"]:
                row["fits"] = spatial_attention_bytes(size, heads) <= max_bytes
            rows.append(row)
    return rows
