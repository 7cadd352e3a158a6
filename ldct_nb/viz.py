"""Figures: CT display windows, label overlays, lesion boxes, comparison grids.

Every CT image is shown through an explicit HU display window, and the window
is written in the title, so a reader knows what grey levels mean.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Rectangle

DISPLAY_WINDOW = (-160.0, 240.0)  # ASCON Fig. 2 / Mayo display window, HU


def show_ct(ax, hu: np.ndarray, *, window: tuple[float, float] = DISPLAY_WINDOW, title: str = "", colorbar: bool = False):
    """Show an HU image in grey levels through ``window`` (HU); title states the window."""
    im = ax.imshow(np.asarray(hu), cmap="gray", vmin=window[0], vmax=window[1], interpolation="nearest")
    ax.set_title(f"{title}\n[{window[0]:g}, {window[1]:g}] HU" if title else f"[{window[0]:g}, {window[1]:g}] HU", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    if colorbar:
        plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="HU")
    return im


def show_difference(ax, diff_hu: np.ndarray, *, limit: float = 100.0, title: str = ""):
    """Show a difference image (HU) with a symmetric diverging scale [-limit, limit]."""
    im = ax.imshow(np.asarray(diff_hu), cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_title(f"{title}\n[{-limit:g}, {limit:g}] HU", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="HU")
    return im


def tissue_colormap(n: int) -> ListedColormap:
    """A qualitative colormap with ``n`` colours; label 0 (air) is transparent."""
    base = plt.get_cmap("tab20", max(n, 2))
    colors = base(np.arange(n))
    colors[0, 3] = 0.0
    return ListedColormap(colors)


def overlay_labels(ax, labels: np.ndarray, tissues: Sequence[str], *, alpha: float = 0.45, legend: bool = True):
    """Draw a tissue label map over the current image, with a legend of the tissues present."""
    cmap = tissue_colormap(len(tissues))
    ax.imshow(np.asarray(labels), cmap=cmap, vmin=-0.5, vmax=len(tissues) - 0.5, alpha=alpha, interpolation="nearest")
    if legend:
        present = [i for i in np.unique(labels) if i != 0]
        handles = [Rectangle((0, 0), 1, 1, color=cmap(i)) for i in present]
        ax.legend(handles, [tissues[i] for i in present], fontsize=6, loc="lower left", framealpha=0.7, ncol=2)


def draw_boxes(ax, boxes: np.ndarray, *, color: str = "yellow", label: str | None = "lesion"):
    """Draw xyxy pixel boxes (x = column, exclusive right / bottom edges)."""
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes).reshape(-1, 4)):
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=color, linewidth=1.2))
        if label and i == 0:
            ax.text(x1, y1 - 2, label, color=color, fontsize=7, va="bottom")


def comparison_grid(
    images: dict[str, np.ndarray],
    *,
    reference: str | None = None,
    window: tuple[float, float] = DISPLAY_WINDOW,
    diff_limit: float = 100.0,
    suptitle: str = "",
    size: float = 3.0,
):
    """A row of images through ``window``; with ``reference`` a second row of
    differences to it (image - reference, HU)."""
    names = list(images)
    rows = 2 if reference else 1
    fig, axes = plt.subplots(rows, len(names), figsize=(size * len(names), size * rows + 0.4), squeeze=False)
    for j, name in enumerate(names):
        show_ct(axes[0, j], images[name], window=window, title=name)
        if reference:
            if name == reference:
                axes[1, j].axis("off")
            else:
                show_difference(axes[1, j], images[name] - images[reference], limit=diff_limit, title=f"{name} - {reference}")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
