"""Pixel-wise contrastive module of MAC-Net (ASCON, MICCAI 2023, sec. 2.3, eq. (5)).

For a query pixel i of the local representation ``F_l`` (64 x H x W):

* the query is the online (denoised) vector ``f'_l(i)``, its positive the
  target (NDCT) vector ``f_l(i)`` at the same place;
* hard negatives [21]: the candidate negatives are the target vectors ``f_l(j)``
  near i; the ``N_neg`` = 24 candidates most similar to ``f_l(i)`` by the cosine
  similarity of eq. (2) are kept (chosen on the target features, as in the
  official code);
* query, positive and negatives go through one two-layer MLP to K = 256 and
  are L2-normalised (``v'(i)``, ``v(i)``, ``v(j)``);
* eq. (5), InfoNCE [18]:
  ``-log exp(v'.v / tau) / (exp(v'.v / tau) + sum_j exp(v'.v(j) / tau))``.

**Which distance is "within m = 7 pixels".** The paper says the candidates'
"distance from f(i) is less than m pixels (m = 7)"; the official code takes the
48 neighbours of a 7 x 7 window. Both are offered by :func:`candidate_offsets`:

* ``distance="chebyshev"`` (default, the official code): the m x m window
  centred on the query, i.e. Chebyshev distance <= (m - 1) / 2 = 3; 48 candidates;
* ``distance="euclidean"`` (the paper's words taken literally): Euclidean
  distance 0 < d < m = 7; 144 candidates.

Candidates outside the image are excluded (never wrapped, unlike the official
code, whose flat indices wrap to the other side of the image); near a corner a
query may have fewer than 24 negatives, and the missing ones drop out of the
denominator of eq. (5).

**The temperature tau** is not given in the paper. The default here is 0.07,
the value of MoCo [8] and CUT [19], which ASCON cites for its EMA and patch
features. The official code's effective value is 1 (its logits are not
divided by a temperature); the ``official`` preset of
:mod:`ldct_nb.losses.ascon_loss` uses 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.errors import ParameterError
from ldct_nb.losses.patch_contrast import (
    _check_features,
    _check_int,
    _check_branches,
    _zero_like_graph,
    gather_vectors,
    pick_neighbours,
    sample_positions,
    window_offsets,
)

N_QUERIES = 512  # pixel queries per image (Mayo-2016; Mayo-2020: 256)
N_NEGATIVES = 24  # hard negatives per query
NEGATIVE_WINDOW = 7  # m
TAU = 0.07  # InfoNCE temperature (not stated in the paper; official code: effectively 1)
DISTANCES = ("chebyshev", "euclidean")
NEGATIVE_SAMPLINGS = ("hard", "random")


def candidate_offsets(m: int = NEGATIVE_WINDOW, distance: str = "chebyshev") -> torch.Tensor:
    """(K, 2) offsets (dy, dx) of the candidate negatives around a query.

    ``"chebyshev"``: the m x m window without its centre (m odd; K = m^2 - 1 = 48
    for m = 7). ``"euclidean"``: every offset with 0 < sqrt(dy^2 + dx^2) < m
    (K = 144 for m = 7).
    """
    m = _check_int("m", m, 2)
    if distance not in DISTANCES:
        raise ParameterError(f"distance must be one of {', '.join(DISTANCES)}; got {distance!r}")
    if distance == "chebyshev":
        if m % 2 == 0:
            raise ParameterError(f"m must be odd for the chebyshev (m x m window) distance, got {m}")
        return window_offsets((m - 1) // 2)
    off = window_offsets(m - 1)
    return off[(off.float() ** 2).sum(1) < m * m]


def select_hard_negatives(
    target_features: torch.Tensor,
    queries: torch.Tensor,
    *,
    n_negatives: int = N_NEGATIVES,
    m: int = NEGATIVE_WINDOW,
    distance: str = "chebyshev",
    sampling: str = "hard",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``n_negatives`` candidates most similar to each query (hard negatives [21]).

    Args:
        target_features: (B, C, H, W) target (NDCT) ``F_l``.
        queries: (B, n) flat query indices.
        n_negatives: negatives kept per query (24).
        m, distance: the candidate neighbourhood (see :func:`candidate_offsets`).
        sampling: ``"hard"`` (the most similar candidates, the paper) or
            ``"random"`` (candidates drawn at random from ``generator``: the
            ablation of Table S2); either way the negatives are returned with
            their similarities, most similar first for ``"hard"``.

    Returns:
        ``(negatives, valid, similarity, candidates, candidate_inside)``:
        (B, n, N) flat indices sorted by decreasing cosine similarity, whether
        each exists (False only when fewer than N candidates are inside the
        image), their similarities (``-inf`` where invalid), and all candidates
        (B, n, K) with their inside-the-image flags.
    """
    feats = _check_features("target_features", target_features)
    n_negatives = _check_int("n_negatives", n_negatives, 1)
    if sampling not in NEGATIVE_SAMPLINGS:
        raise ParameterError(f"negative sampling must be one of {NEGATIVE_SAMPLINGS}, got {sampling!r}")
    offsets = candidate_offsets(m, distance)
    if n_negatives > len(offsets):
        raise ParameterError(
            f"n_negatives = {n_negatives} exceeds the {len(offsets)} candidates of a {distance} neighbourhood with m = {m}"
        )
    negatives, top, cand, inside = pick_neighbours(feats, queries, offsets, n_negatives,
                                                   at_random=sampling == "random", generator=generator)
    return negatives, torch.isfinite(top), top, cand, inside


def info_nce(
    query: torch.Tensor,
    positive: torch.Tensor,
    negatives: torch.Tensor,
    *,
    tau: float = TAU,
    negative_valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. (5) per query: ``-log softmax([q.p, q.n_1, ..., q.n_M] / tau)[0]``.

    Args:
        query, positive: (N, K) vectors (already L2-normalised in MAC-Net).
        negatives: (N, M, K).
        tau: temperature > 0.
        negative_valid: (N, M) bool; False entries are left out of the sum.

    Returns:
        (N,) losses, each >= 0.
    """
    try:
        t = float(tau)
    except (TypeError, ValueError):
        t = float("nan")
    if isinstance(tau, bool) or not t > 0:
        raise ParameterError(f"tau must be a number > 0, got {tau!r}")
    if query.ndim != 2 or positive.shape != query.shape or negatives.ndim != 3 or negatives.shape[::2] != query.shape:
        raise ParameterError(
            f"info_nce expects query, positive (N, K) and negatives (N, M, K); got {tuple(query.shape)}, "
            f"{tuple(positive.shape)}, {tuple(negatives.shape)}"
        )
    pos = (query * positive).sum(-1, keepdim=True)
    neg = torch.einsum("nk,nmk->nm", query, negatives)
    if negative_valid is not None:
        neg = neg.masked_fill(~negative_valid, float("-inf"))
    logits = torch.cat([pos, neg], dim=1) / t
    return -F.log_softmax(logits, dim=1)[:, 0]


@dataclass
class PixelSample:
    """What the pixel-wise module sampled (flat indices on the H x W image).

    ``queries`` (B, n), ``query_valid`` (B, n), ``negatives`` (B, n, N),
    ``negative_valid`` (B, n, N), ``candidates`` (B, n, K), ``candidate_inside``
    (B, n, K).
    """

    queries: torch.Tensor
    query_valid: torch.Tensor
    negatives: torch.Tensor
    negative_valid: torch.Tensor
    candidates: torch.Tensor
    candidate_inside: torch.Tensor
    size: tuple[int, int]

    def describe(self, b: int = 0, i: int = 0) -> dict:
        """Query ``i`` of image ``b`` in (row, column) pixels: ``query``,
        ``candidates`` (those inside the image) and ``negatives`` (the valid
        hard negatives, most similar first)."""
        w = self.size[1]
        rc = lambda idx: [(int(j) // w, int(j) % w) for j in idx]  # noqa: E731
        return {
            "query": rc(self.queries[b, i : i + 1])[0],
            "candidates": rc(self.candidates[b, i][self.candidate_inside[b, i]]),
            "negatives": rc(self.negatives[b, i][self.negative_valid[b, i]]),
        }

    def __repr__(self) -> str:
        return (
            f"PixelSample({int(self.query_valid.sum())} queries on a {self.size[0]} x {self.size[1]} image, "
            f"{self.negatives.shape[-1]} hard negatives of {self.candidates.shape[-1]} candidates each)"
        )


def pixel_contrastive_loss(
    online_features: torch.Tensor,
    target_features: torch.Tensor,
    *,
    local_mlp: nn.Module,
    n_queries: int = N_QUERIES,
    n_negatives: int = N_NEGATIVES,
    m: int = NEGATIVE_WINDOW,
    distance: str = "chebyshev",
    tau: float = TAU,
    query_mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
    target_mlp: nn.Module | None = None,
    negative_sampling: str = "hard",
) -> tuple[torch.Tensor, PixelSample]:
    """``L_local`` of eq. (5) with hard negatives.

    Args:
        online_features: (B, C, H, W) ``F'_l`` of the denoised image (online).
        target_features: (B, C, H, W) ``F_l`` of the NDCT image (target).
        local_mlp: the two-layer MLP to K dimensions, ending with L2 norm.
        n_queries: queries per image (512 for Mayo-2016, 256 for Mayo-2020).
        n_negatives, m, distance: see :func:`select_hard_negatives`.
        tau: temperature (default 0.07; the official code: 1).
        query_mask: (B, H, W) bool, where queries may lie (the background filter).
        generator: random stream for the queries.
        reduction: ``"mean"`` over queries (default; the paper writes a sum) or ``"sum"``.
            The mean rescales this term by 1 / (number of queries) against the
            other terms of a total loss, so the choice changes their balance.
        target_mlp: None maps query, positive and negatives through ``local_mlp``
            (the paper's one MLP); a module (the EMA copy, official code) maps the
            positive and negatives instead, under ``no_grad``.
        negative_sampling: ``"hard"`` or ``"random"`` (see :func:`select_hard_negatives`).

    Returns:
        ``(loss, sample)``. The target features get no gradient.
    """
    on, tg, query_mask = _check_branches(online_features, target_features, reduction, "query_mask", query_mask)
    n_queries = _check_int("n_queries", n_queries, 1)
    b, c, h, w = tg.shape
    tg = tg.detach()
    queries, query_valid = sample_positions(query_mask, min(n_queries, h * w), generator=generator)
    negatives, neg_valid, _, cand, inside = select_hard_negatives(
        tg, queries, n_negatives=n_negatives, m=m, distance=distance, sampling=negative_sampling, generator=generator
    )
    sample = PixelSample(queries, query_valid, negatives, neg_valid, cand, inside, (h, w))
    keep = query_valid.reshape(-1)
    if not bool(keep.any()):
        return _zero_like_graph(on), sample
    q = gather_vectors(on, queries).reshape(-1, c)[keep]
    p = gather_vectors(tg, queries).reshape(-1, c)[keep]
    n = gather_vectors(tg, negatives).reshape(-1, n_negatives, c)[keep]
    n_valid = neg_valid.reshape(-1, n_negatives)[keep]
    nq = q.shape[0]
    if target_mlp is None:
        v_all = local_mlp(torch.cat([q, p, n.reshape(-1, c)], dim=0))
        v_q, v_p, v_n = v_all[:nq], v_all[nq: 2 * nq], v_all[2 * nq:].reshape(nq, n_negatives, -1)
    else:
        v_q = local_mlp(q)
        with torch.no_grad():
            v_t = target_mlp(torch.cat([p, n.reshape(-1, c)], dim=0))
        v_p, v_n = v_t[:nq], v_t[nq:].reshape(nq, n_negatives, -1)
    per_query = info_nce(v_q, v_p, v_n, tau=tau, negative_valid=n_valid)
    return (per_query.mean() if reduction == "mean" else per_query.sum()), sample


__all__ = [
    "NEGATIVE_SAMPLINGS",
    "N_NEGATIVES",
    "N_QUERIES",
    "TAU",
    "PixelSample",
    "candidate_offsets",
    "info_nce",
    "pixel_contrastive_loss",
    "select_hard_negatives",
]
