"""Training the NDCT feature network used as a perceptual extractor.

:class:`~ldct_nb.models.feature_net.NDCTFeatureNet` (the network, with
:func:`~ldct_nb.models.feature_net.save_feature_net` /
:func:`~ldct_nb.models.feature_net.load_feature_net`) is trained here as a
self-supervised autoencoder on NDCT patches (after SACNN's self-supervised
perceptual network, Li et al. 2020, cited by LIDnet): MSE between the decoded
patch and the patch itself, Adam.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ldct_nb.errors import ParameterError
from ldct_nb.models.feature_net import NDCTFeatureNet


def _random_patches(images: np.ndarray, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    s, h, w = images.shape
    idx = rng.integers(0, s, n)
    ys, xs = rng.integers(0, h - size + 1, n), rng.integers(0, w - size + 1, n)
    return np.stack([np.asarray(images[i, y : y + size, x : x + size]) for i, y, x in zip(idx, ys, xs)])


def train_feature_net(
    split,
    *,
    steps: int = 500,
    patch_size: int = 64,
    batch_size: int = 16,
    width: int = 32,
    lr: float = 1e-3,
    window=None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> tuple[NDCTFeatureNet, list[float]]:
    """Train :class:`NDCTFeatureNet` to reconstruct NDCT patches (MSE, Adam).

    ``split``: a :class:`~ldct_nb.data.cache.CacheSplit` (only ``.ndct``, HU,
    is read) or an S x H x W HU array. ``window``: the HUWindow to scale HU to
    [0, 1] (default ASCON's [-1000, 2000]). ``patch_size`` must be a multiple
    of 4 and fit the slices. Returns the network (eval mode) and the loss per step.
    """
    from ldct_nb.data.datasets import HUWindow

    for name, v, lo in (("steps", steps, 1), ("patch_size", patch_size, 4), ("batch_size", batch_size, 1), ("width", width, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ParameterError(f"{name} must be an int >= {lo}, got {v!r}")
    if patch_size % 4:
        raise ParameterError(f"patch_size must be a multiple of 4, got {patch_size}")
    ndct = split.ndct if hasattr(split, "ndct") else np.asarray(split)
    if ndct.ndim != 3 or min(ndct.shape[1:]) < patch_size:
        raise ParameterError(f"split must hold S x H x W slices at least patch_size={patch_size} wide, got shape {ndct.shape}")
    window = window or HUWindow()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    dev = torch.device(device)
    net = NDCTFeatureNet(width).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    losses = []
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="feature network")
    for _ in it:
        batch = window.normalize(_random_patches(ndct, batch_size, patch_size, rng).astype(np.float32))
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))[:, None].to(dev)
        loss = F.mse_loss(net.reconstruct(x), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    net.trained_steps = steps
    return net.eval(), losses


__all__ = ["train_feature_net"]
