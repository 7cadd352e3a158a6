"""Figures of notebook 07 (ASCON Fig. 3 and its measured version): NDCT, tissue map and each
model's cluster map; t-SNE of the stratified pixel sample coloured by cluster and by
tissue; the per-slice scores of two models, paired."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from ldct_nb.interpret.compare import NAMES
from ldct_nb.viz import DISPLAY_WINDOW, show_ct

__all__ = ["label_colormap", "plot_cluster_maps", "plot_feature_pca", "plot_paired_scores", "plot_tsne"]


def label_colormap(n: int) -> ListedColormap:
    """``n`` qualitative colours (tab20, then tab20b); masked pixels (outside the region) black."""
    base = np.concatenate([plt.get_cmap("tab20")(np.arange(20)), plt.get_cmap("tab20b")(np.arange(20))])
    cmap = ListedColormap(base[np.arange(max(n, 1)) % len(base)])
    cmap.set_bad("black")
    return cmap


def _label_image(ax, ids: np.ndarray, n: int, title: str) -> None:
    ax.imshow(np.ma.masked_less(ids, 0), cmap=label_colormap(n), vmin=-0.5, vmax=n - 0.5, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("column (pixel)", fontsize=8)
    ax.set_ylabel("row (pixel)", fontsize=8)
    ax.tick_params(labelsize=7)


def _n_colours(tissues: Sequence[str], maps: Mapping[str, np.ndarray], labels) -> int:
    top = max([int(m.max()) for m in maps.values()] + [len(tissues) - 1] + ([int(np.max(labels))] if labels is not None else []))
    return top + 1


def plot_cluster_maps(
    ndct_hu: np.ndarray,
    labels: np.ndarray | None,
    tissues: Sequence[str],
    maps: Mapping[str, np.ndarray],
    *,
    window: tuple[float, float] = DISPLAY_WINDOW,
    title: str = "",
):
    """NDCT (through ``window``, HU), the tissue labels (if any) and one K-means cluster map per
    model, coloured so that a cluster has the colour of the tissue it is matched to (without
    labels: colours in order of the clusters' mean NDCT HU; black: outside the clustered region)."""
    n = _n_colours(tissues, maps, labels)
    panels = 1 + (labels is not None) + len(maps)
    fig, axes = plt.subplots(1, panels, figsize=(3.3 * panels, 4.4), layout="constrained")
    axes = np.atleast_1d(axes)
    show_ct(axes[0], ndct_hu, window=window, title="NDCT")
    col = 1
    if labels is not None:
        _label_image(axes[1], np.asarray(labels), n, "tissue labels")
        present = np.unique(labels)
        cmap = label_colormap(n)
        fig.legend([Patch(color=cmap(i)) for i in present], [tissues[i] for i in present], fontsize=7,
                   loc="outside lower center", ncol=min(len(present), 7), frameon=False)
        col = 2
    for ax, (name, m) in zip(axes[col:], maps.items()):
        k = int(np.unique(m[m >= 0]).size)
        how = "colour of the matched tissue" if labels is not None else "colours in order of mean NDCT HU"
        _label_image(ax, m, n, f"{name}: K-means, k = {k}\n({how})")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_feature_pca(ndct_hu: np.ndarray, images: Mapping[str, np.ndarray], *, window: tuple[float, float] = DISPLAY_WINDOW,
                     title: str = ""):
    """The NDCT (through ``window``, HU) beside each model's feature map shown as the RGB image
    of its first three principal components (:func:`~ldct_nb.interpret.clusters.principal_rgb`):
    regions of one colour have similar features."""
    fig, axes = plt.subplots(1, 1 + len(images), figsize=(3.3 * (1 + len(images)), 3.9), layout="constrained")
    axes = np.atleast_1d(axes)
    show_ct(axes[0], ndct_hu, window=window, title="NDCT")
    for ax, (name, rgb) in zip(axes[1:], images.items()):
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title(f"{name}: features as RGB\n(principal components 1, 2, 3)", fontsize=9)
        ax.set_xlabel("column (pixel)", fontsize=8)
        ax.set_ylabel("row (pixel)", fontsize=8)
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_tsne(
    embeddings: Mapping[str, np.ndarray],
    samples: Mapping[str, Mapping[str, np.ndarray | None]],
    tissues: Sequence[str],
    *,
    title: str = "",
):
    """t-SNE of each model's pixel sample: coloured by K-means cluster (top row) and, when the
    sample has tissue labels, by true tissue (bottom row)."""
    models = list(embeddings)
    labelled = all(samples[m].get("labels") is not None for m in models)
    n = max([len(tissues)] + [int(samples[m]["clusters"].max()) + 1 for m in models])
    cmap = label_colormap(n)
    rows = 2 if labelled else 1
    fig, axes = plt.subplots(rows, len(models), figsize=(4.2 * len(models), 3.9 * rows + 0.4), squeeze=False,
                             layout="constrained")
    for j, m in enumerate(models):
        xy = np.asarray(embeddings[m])
        colourings = [("K-means cluster", samples[m]["clusters"])]
        if labelled:
            colourings.append(("true tissue", samples[m]["labels"]))
        for i, (what, ids) in enumerate(colourings):
            ax = axes[i, j]
            ax.scatter(xy[:, 0], xy[:, 1], c=np.asarray(ids), cmap=cmap, vmin=-0.5, vmax=n - 0.5, s=6, linewidths=0)
            ax.set_title(f"{m}: coloured by {what}", fontsize=9)
            ax.set_xlabel("t-SNE 1", fontsize=8)
            ax.set_ylabel("t-SNE 2", fontsize=8)
            ax.tick_params(labelsize=7)
    if labelled:
        present = sorted({int(i) for m in models for i in np.unique(samples[m]["labels"])})
        fig.legend([Patch(color=cmap(i)) for i in present], [tissues[i] for i in present], fontsize=7,
                   loc="outside lower center", ncol=min(len(present), 7), frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_paired_scores(scores: pd.DataFrame, baseline: str, candidate: str, metrics: Sequence[str], *, title: str = ""):
    """One panel per metric: each slice's score (averaged over seeds) for ``baseline`` and
    ``candidate``, joined by a line (the pairs of the signed-rank test)."""
    metrics = list(metrics)
    ncols = min(4, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols, 3.3 * nrows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    a = scores[scores["model"] == baseline].groupby("slice")[metrics].mean()
    b = scores[scores["model"] == candidate].groupby("slice")[metrics].mean()
    common = a.index.intersection(b.index)
    for ax, m in zip(axes.flat, metrics):
        for s in common:
            ax.plot([0, 1], [a.loc[s, m], b.loc[s, m]], "-o", color="grey", alpha=0.6, markersize=3, linewidth=0.8)
        ax.plot([0, 1], [a.loc[common, m].mean(), b.loc[common, m].mean()], "-D", color="crimson", markersize=6,
                linewidth=2, label="mean")
        ax.set_xticks([0, 1], [baseline, candidate], fontsize=8, rotation=15)
        ax.set_xlim(-0.3, 1.3)
        ax.set_title(NAMES.get(m, m), fontsize=9)
        ax.set_ylabel("score per slice", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
