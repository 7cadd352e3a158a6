"""Device choice with CPU fallback, seeding for determinism, and the notebook banner."""
from __future__ import annotations

import os
import platform
import random
from importlib import metadata

import numpy as np
import torch

from ldct_nb.errors import ParameterError

PACKAGES = (
    "torch", "torchvision", "numpy", "scipy", "scikit-image", "scikit-learn", "torchmetrics",
    "pydicom", "papermill", "matplotlib", "ldct-nb",
)


DEVICE_TYPES = ("cpu", "cuda", "mps")
"""The device types the package runs on."""


def select_device(device: str | torch.device = "auto", *, name: str = "device") -> torch.device:
    """The torch device for ``device``: ``"auto"`` picks CUDA, then Apple MPS, then CPU.

    An explicit ``"cuda"`` (or ``"cuda:1"``, ``"mps"``, or a :class:`torch.device`)
    that is not available falls back to CPU with a message instead of failing
    deep inside torch; anything else (``"banana"``, ``"meta"``, ``0``) is
    refused with a :class:`ParameterError` that names the parameter ``name``
    (use it to validate a function's ``device`` argument).
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ParameterError(f"{name} must be a string such as 'auto', 'cpu' or 'cuda', got {device!r}")
    text = device.strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(text)
    except RuntimeError as exc:
        raise ParameterError(
            f"{name} {device!r} is not a torch device: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from exc
    if dev.type not in DEVICE_TYPES:
        raise ParameterError(f"{name} {device!r} is not supported: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        print(f"{name} {device!r} is not available here: falling back to CPU")
        return torch.device("cpu")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        print(f"{name} {device!r} is not available here: falling back to CPU")
        return torch.device("cpu")
    return dev


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (all devices); with ``deterministic`` ask
    torch for deterministic kernels where they exist (warn-only elsewhere)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be an int >= 0, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape the results."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_description(device: torch.device) -> str:
    """A short human description: GPU name and memory, or the CPU and its threads."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name} ({props.total_memory / 2**30:.0f} GiB)"
    return f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
