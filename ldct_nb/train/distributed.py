"""Data parallelism under ``torchrun``: process group, gradient averaging, broadcasts.

Every process builds the same networks from the same seed, takes its share of
the global batch (:class:`~ldct_nb.train.batches.BatchStream`), and before
every optimiser step the gradients of the networks that step updates are
averaged over the processes (one all-reduce of the flattened gradients per
network). This is what :class:`torch.nn.parallel.DistributedDataParallel`
does; we call the collective directly instead of wrapping the networks
because the methods' loss closures call their networks themselves, and
ASCON updates two networks with two optimisers in one iteration (MAC-Net
frozen in one of them), which DDP's one-forward-one-backward bookkeeping
does not allow. The EMA target of MAC-Net stays identical on every process
because it is a deterministic function of identical online weights.
BatchNorm statistics are per process (as in DDP without SyncBatchNorm).
Rank 0 writes checkpoints and logs; all processes read the checkpoint on
resume, so a run can resume with another number of processes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

__all__ = ["DistInfo", "average_gradients", "barrier", "broadcast_module", "init_distributed", "shutdown"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place: ``rank`` of ``world_size`` (1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str = "cpu") -> DistInfo:
    """Join the process group ``torchrun`` describes (environment ``WORLD_SIZE``,
    ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); NCCL on CUDA,
    gloo on CPU. Without those variables (or with one process) nothing is done."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(rank, world, local)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def run_cli(train_call) -> int:
    """The end of a training command line: run ``train_call()``; a bad config or data
    (:class:`~ldct_nb.errors.LdctError`) prints ``error: <message>`` and gives exit
    status 2; otherwise the run's summary is printed as JSON and the status is 0. The
    process group of a ``torchrun`` launch is closed either way."""
    import json
    import sys

    from ldct_nb.errors import LdctError

    try:
        result = train_call()
    except LdctError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutdown()
    print(json.dumps(result.summary(), indent=2))
    return 0


def average_gradients(params, world_size: int) -> None:
    """Average the ``.grad`` of ``params`` over the processes (in place)."""
    if world_size <= 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat /= world_size
    for g, synced in zip(grads, _unflatten_dense_tensors(flat, grads)):
        g.copy_(synced)


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy ``module``'s parameters and buffers from process ``src`` to every process."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
