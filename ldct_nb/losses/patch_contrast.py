"""Patch-wise non-contrastive module of MAC-Net (ASCON, MICCAI 2023, sec. 2.3).

Each pixel of the global representation ``F_g`` (C x H/16 x W/16) stands for a
16 x 16 patch. For an anchor patch i:

1. its 8 neighbours j on the ``F_g`` grid are compared with the cosine
   similarity ``s(i, j)`` of eq. (2);
2. the top-4 neighbours form the positive set P(i). They are chosen on the
   **target** (NDCT) features and the same indices are reused on the online
   (denoised) features, as in the official code;
3. eq. (3): ``g(i) = GAP(f(i), {f(j)}_{j in P(i)})``, on both branches;
4. online: projection ``p'_g`` then prediction ``q'``; target: projection ``p_g``;
5. eq. (4), BYOL's normalised MSE ``2 - 2 cos(q'(z'), z)``, in [0, 4].

Borders never wrap: a neighbour outside the grid is not a candidate (an anchor
in a corner has 3 neighbours, on an edge 5), and the GAP averages the anchor
with the positives that exist.

This module also holds the grid sampling helpers that the pixel-wise module
reuses: :func:`sample_positions` (random anchors / queries inside a mask, from
an explicit :class:`torch.Generator`) and :func:`gather_neighbours`.

About the sample counts: the paper's sec. 3.1 lists "N_pos^l = 32,
N_pos^g = 512" for Mayo-2016, which reads as 32 pixel queries and 512 patch
anchors (half of the 1024 cells of the H/16 grid of a 512 x 512 slice); the
official code (``--num_patches 32,512``) uses 32 anchors on the H/16 grid and
512 pixel queries. This project follows the official code: 32 anchors here,
512 queries in :mod:`ldct_nb.losses.pixel_contrast`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.errors import ParameterError

N_ANCHORS = 32  # anchors per image on the H/16 grid (Mayo-2016; Mayo-2020: 16)
N_POSITIVES = 4  # top-4 of the 8 neighbours (paper sec. 2.3)
NEIGHBOUR_RADIUS = 1  # 3 x 3 neighbourhood: 8 neighbours


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ParameterError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _check_features(name: str, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ParameterError(f"{name} must be a (B, C, H, W) feature tensor, got {shape}")
    return x


# ------------------------------------------------------------------ sampling


def sample_positions(
    mask: torch.Tensor, n: int, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` distinct positions per image uniformly among the True pixels of ``mask``.

    Args:
        mask: (B, H, W) or (B, 1, H, W) bool; True where a sample may be drawn.
        n: positions per image.
        generator: the random stream (a :class:`torch.Generator` on the mask's
            device); None uses the global one.

    Returns:
        ``(index, valid)``, both (B, n): flat indices ``y * W + x`` and whether
        the draw is real. An image with k < n allowed pixels gets its k pixels
        (in random order) and ``n - k`` draws marked invalid, never repeats.
    """
    n = _check_int("n", n, 1)
    if not isinstance(mask, torch.Tensor) or mask.ndim not in (3, 4) or (mask.ndim == 4 and mask.shape[1] != 1):
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ParameterError(f"mask must be a (B, H, W) or (B, 1, H, W) tensor, got {shape}")
    flat = mask.reshape(mask.shape[0], -1).bool()
    if n > flat.shape[1]:
        raise ParameterError(f"n = {n} samples requested from a grid of only {flat.shape[1]} positions")
    scores = torch.rand(flat.shape, generator=generator, device=flat.device)
    scores = torch.where(flat, scores, torch.full_like(scores, -1.0))
    top, index = scores.topk(n, dim=1)
    return index, top >= 0


def window_offsets(radius: int) -> torch.Tensor:
    """(K, 2) integer offsets (dy, dx) of the square window of Chebyshev radius
    ``radius`` without the centre: K = (2 r + 1)^2 - 1 (8 for r = 1, 48 for r = 3)."""
    radius = _check_int("radius", radius, 1)
    r = torch.arange(-radius, radius + 1)
    dy, dx = torch.meshgrid(r, r, indexing="ij")
    off = torch.stack([dy.reshape(-1), dx.reshape(-1)], dim=1)
    return off[(off != 0).any(dim=1)]


def gather_neighbours(
    index: torch.Tensor, offsets: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices of the neighbours ``index + offset`` on an H x W grid, no wrap-around.

    Returns ``(neighbour_index, inside)``, both (B, n, K): neighbours that fall
    outside the grid are flagged ``inside = False`` (their index is clamped to a
    valid position only so it can be gathered; never use it unmasked).
    """
    y = torch.div(index, width, rounding_mode="floor")
    x = index % width
    off = offsets.to(index.device)
    ny = y.unsqueeze(-1) + off[:, 0]
    nx = x.unsqueeze(-1) + off[:, 1]
    inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
    flat = ny.clamp(0, height - 1) * width + nx.clamp(0, width - 1)
    return flat, inside


def gather_vectors(features: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Feature vectors at flat positions: (B, C, H, W), (B, ...) -> (B, ..., C)."""
    b, c = features.shape[:2]
    flat = features.reshape(b, c, -1).transpose(1, 2)  # B, HW, C
    idx = index.reshape(b, -1)
    out = torch.gather(flat, 1, idx.unsqueeze(-1).expand(-1, -1, c))
    return out.reshape(*index.shape, c)


def pick_neighbours(feats: torch.Tensor, centres: torch.Tensor, offsets: torch.Tensor, k: int, *, at_random: bool,
                    generator: torch.Generator | None = None):
    """The ``k`` window neighbours of each centre chosen on ``feats`` (no gradient): the
    ``k`` most cosine-similar (``at_random`` False: neighbouring positives, hard
    negatives) or ``k`` drawn at random among those inside the grid (Table S2's
    ablations). Returns ``(picked, similarity, neighbours, inside)``: (B, n, k) flat
    indices and their similarities (``-inf`` where fewer than ``k`` neighbours are
    inside), and all (B, n, K) neighbours with their inside flags."""
    h, w = feats.shape[-2:]
    neigh, inside = gather_neighbours(centres, offsets, h, w)
    with torch.no_grad():
        c = F.normalize(gather_vectors(feats, centres), dim=-1)  # B, n, C
        v = F.normalize(gather_vectors(feats, neigh), dim=-1)  # B, n, K, C
        sim = (v * c.unsqueeze(2)).sum(-1).masked_fill(~inside, float("-inf"))
        if at_random:  # a random order of the inside neighbours, then the first k
            score = torch.rand(sim.shape, generator=generator, device=generator.device if generator else sim.device)
            _, pick = score.to(sim.device).masked_fill(~inside, -1.0).topk(k, dim=-1)
            top = torch.gather(sim, -1, pick)
        else:
            top, pick = sim.topk(k, dim=-1)
    return torch.gather(neigh, -1, pick), top, neigh, inside


def _check_mask(name: str, mask, batch: int, size: tuple[int, int]) -> torch.Tensor:
    """Validate a (B, h, w) or (B, 1, h, w) sampling mask against the features' batch and grid."""
    ok = isinstance(mask, torch.Tensor) and mask.ndim in (3, 4) and (mask.ndim == 3 or mask.shape[1] == 1)
    if not ok or mask.shape[0] != batch or tuple(mask.shape[-2:]) != tuple(size):
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ParameterError(f"{name} must be a ({batch}, {size[0]}, {size[1]}) bool tensor like the features, got {shape}")
    return mask



def _check_branches(online_features, target_features, reduction: str, mask_name: str, mask):
    """Validate the online / target feature pair, the reduction and the sampling
    mask shared by both contrastive modules; return (online, target, mask)."""
    on = _check_features("online_features", online_features)
    tg = _check_features("target_features", target_features)
    if on.shape != tg.shape:
        raise ParameterError(f"online_features {tuple(on.shape)} and target_features {tuple(tg.shape)} differ in shape")
    if reduction not in ("mean", "sum"):
        raise ParameterError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    b, _, h, w = tg.shape
    if mask is None:
        mask = torch.ones(b, h, w, dtype=torch.bool, device=tg.device)
    _check_mask(mask_name, mask, b, (h, w))
    return on, tg, mask

def grid_mask(body: torch.Tensor, grid_size: tuple[int, int], min_fraction: float = 0.5) -> torch.Tensor:
    """A pixel body mask (B, H, W) reduced to a coarser grid: a cell is inside
    when at least ``min_fraction`` of its pixels are."""
    b = body.reshape(body.shape[0], 1, *body.shape[-2:]).float()
    frac = F.adaptive_avg_pool2d(b, grid_size)
    return frac[:, 0] >= min_fraction


# ------------------------------------------------------------- the module


MATCHINGS = ("neighbour", "random")


def select_positives(
    target_features: torch.Tensor,
    anchors: torch.Tensor,
    *,
    k: int = N_POSITIVES,
    radius: int = NEIGHBOUR_RADIUS,
    matching: str = "neighbour",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-``k`` neighbours of each anchor by cosine similarity, eq. (2).

    Args:
        target_features: (B, C, h, w) target (NDCT) ``F_g``.
        anchors: (B, n) flat anchor indices on the h x w grid.
        k: positives per anchor (4).
        radius: neighbourhood radius (1: the 8 neighbours).
        matching: ``"neighbour"`` (the paper's neighbouring positive matching:
            the ``k`` most similar neighbours) or ``"random"`` (``k`` neighbours
            drawn at random from ``generator``: the ablation of Table S2).

    Returns:
        ``(positives, valid, similarity)``: (B, n, k) flat indices sorted by
        decreasing similarity, whether each exists (False only when fewer than
        k neighbours are inside the grid), and their cosine similarities
        (``-inf`` where invalid).
    """
    feats = _check_features("target_features", target_features)
    k = _check_int("k", k, 1)
    if matching not in MATCHINGS:
        raise ParameterError(f"matching must be one of {MATCHINGS}, got {matching!r}")
    offsets = window_offsets(radius)
    if k > len(offsets):
        raise ParameterError(f"k = {k} positives asked from only {len(offsets)} neighbours (radius {radius})")
    positives, top, _, _ = pick_neighbours(feats, anchors, offsets, k, at_random=matching == "random",
                                           generator=generator)
    return positives, torch.isfinite(top), top


def patch_gap(features: torch.Tensor, anchors: torch.Tensor, positives: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Eq. (3): average of the anchor vector and its valid positives -> (B, n, C)."""
    a = gather_vectors(features, anchors)
    p = gather_vectors(features, positives)
    wts = valid.to(p.dtype).unsqueeze(-1)
    return (a + (p * wts).sum(2)) / (1.0 + wts.sum(2))


def normalized_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. (4) per sample: ``||p/|p| - z/|z|||^2 = 2 - 2 cos(p, z)``, in [0, 4]."""
    p = F.normalize(prediction, dim=-1)
    z = F.normalize(target, dim=-1)
    return 2.0 - 2.0 * (p * z).sum(dim=-1)


@dataclass
class PatchSample:
    """What the patch-wise module sampled on the H/16 grid (for figures and tests).

    ``anchors`` (B, n), ``anchor_valid`` (B, n), ``positives`` (B, n, k),
    ``positive_valid`` (B, n, k), ``similarity`` (B, n, k): flat indices on a
    grid of ``grid_size`` = (h, w) cells (each cell is H/h x W/w image pixels).
    """

    anchors: torch.Tensor
    anchor_valid: torch.Tensor
    positives: torch.Tensor
    positive_valid: torch.Tensor
    similarity: torch.Tensor
    grid_size: tuple[int, int]

    def describe(self, b: int = 0, i: int = 0) -> dict:
        """Anchor ``i`` of image ``b`` in (row, column) grid cells: ``anchor``,
        ``neighbours`` (those inside the grid), ``positives`` (the valid top-k,
        by decreasing similarity) and their ``similarity``."""
        h, w = self.grid_size
        a = self.anchors[b, i : i + 1].reshape(1, 1)
        neigh, inside = gather_neighbours(a, window_offsets(NEIGHBOUR_RADIUS), h, w)
        ok = self.positive_valid[b, i]
        cells = lambda idx: [(int(j) // w, int(j) % w) for j in idx]  # noqa: E731
        return {
            "anchor": cells(a.reshape(-1))[0],
            "neighbours": cells(neigh.reshape(-1)[inside.reshape(-1)]),
            "positives": cells(self.positives[b, i][ok]),
            "similarity": [float(v) for v in self.similarity[b, i][ok]],
        }

    def __repr__(self) -> str:
        return (
            f"PatchSample({int(self.anchor_valid.sum())} anchors on a {self.grid_size[0]} x {self.grid_size[1]} "
            f"grid, {self.positives.shape[-1]} positives each)"
        )


def _zero_like_graph(*tensors: torch.Tensor) -> torch.Tensor:
    """A zero that stays connected to the graph of ``tensors`` (so backward works)."""
    return sum(t.sum() * 0.0 for t in tensors)


def patch_noncontrastive_loss(
    online_features: torch.Tensor,
    target_features: torch.Tensor,
    *,
    online_projector: nn.Module,
    predictor: nn.Module,
    target_projector: nn.Module,
    n_anchors: int = N_ANCHORS,
    k: int = N_POSITIVES,
    radius: int = NEIGHBOUR_RADIUS,
    anchor_mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
    matching: str = "neighbour",
) -> tuple[torch.Tensor, PatchSample]:
    """``L_global`` of eq. (4) with the neighbouring positive matching of eqs. (2)-(3).

    Args:
        online_features: (B, C, h, w) ``F'_g`` of the denoised image (online).
        target_features: (B, C, h, w) ``F_g`` of the NDCT image (target).
        online_projector, predictor, target_projector: ``p'_g``, ``q'``, ``p_g``.
        n_anchors: anchors per image (32 for Mayo-2016, 16 for Mayo-2020).
        k, radius: top-k positives among the neighbours within ``radius``.
        anchor_mask: (B, h, w) bool, where anchors may lie (the background
            filter); None allows every cell.
        generator: random stream for the anchors.
        reduction: ``"mean"`` over anchors (default) or ``"sum"`` (the paper's
            eq. (4)). The term alone only changes scale, but in a total loss the
            sum multiplies this term's weight, and so its gradient against the
            pixel terms, by the number of anchors (32 per image for Mayo-2016):
            the choice sets the balance the presets' weights were tuned for
            (see notebook 03's gradient table).
        matching: ``"neighbour"`` (top-k by similarity) or ``"random"`` (see
            :func:`select_positives`).

    Returns:
        ``(loss, sample)``. The target side gets no gradient. With fewer than 2
        valid anchors (BatchNorm in the heads needs 2) the loss is a zero still
        connected to the online features.
    """
    on, tg, anchor_mask = _check_branches(online_features, target_features, reduction, "anchor_mask", anchor_mask)
    n_anchors = _check_int("n_anchors", n_anchors, 1)
    b, _, h, w = tg.shape
    anchors, anchor_valid = sample_positions(anchor_mask, min(n_anchors, h * w), generator=generator)
    tg = tg.detach()
    positives, pos_valid, sim = select_positives(tg, anchors, k=k, radius=radius, matching=matching, generator=generator)
    sample = PatchSample(anchors, anchor_valid, positives, pos_valid, sim, (h, w))
    keep = anchor_valid.reshape(-1)
    if int(keep.sum()) < 2:
        return _zero_like_graph(on), sample
    g_online = patch_gap(on, anchors, positives, pos_valid).reshape(-1, on.shape[1])[keep]
    with torch.no_grad():
        g_target = patch_gap(tg, anchors, positives, pos_valid).reshape(-1, tg.shape[1])[keep]
        z_target = target_projector(g_target)
    prediction = predictor(online_projector(g_online))
    per_anchor = normalized_mse(prediction, z_target)
    return (per_anchor.mean() if reduction == "mean" else per_anchor.sum()), sample


__all__ = [
    "MATCHINGS",
    "N_ANCHORS",
    "N_POSITIVES",
    "PatchSample",
    "gather_neighbours",
    "gather_vectors",
    "grid_mask",
    "normalized_mse",
    "patch_gap",
    "patch_noncontrastive_loss",
    "pick_neighbours",
    "sample_positions",
    "select_positives",
    "window_offsets",
]
