"""The interpretability study of notebook 07: trained denoisers (several seeds each) on the
test slices, features before the last layer, K-means per slice, scores against the
tissue labels (:func:`~ldct_nb.interpret.clusters.cluster_agreement`), and the cluster
map and t-SNE sample of one slice for the figures (ASCON Fig. 3).

It reads checkpoints; it never trains. :func:`checkpoint_paths` names every missing file
and the notebook that writes it.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ldct_nb.errors import ParameterError
from ldct_nb.interpret.clusters import (
    LABEL_SCORES, UNLABELLED_SCORES, CollapsedFeaturesWarning, body_mask, cluster_agreement, limit_threads,
    match_clusters, order_by_intensity, principal_rgb, stratified_sample,
)
from ldct_nb.interpret.features import default_layer, extract_features
from ldct_nb.paths import resolve
from ldct_nb.progress import progress as progress_bar

__all__ = ["REGIONS", "Study", "checkpoint_paths", "interpret_checkpoints", "save_study"]

REGIONS = ("body", "all")
"""Pixels that are clustered and scored: inside the body (default) or the whole slice."""


def checkpoint_paths(
    run_dir: str | os.PathLike[str],
    table: str,
    names: Mapping[str, str],
    seeds: Sequence[int],
    *,
    which: str = "best",
    made_by: str = "notebook 04 (training)",
) -> dict[str, dict[int, Path]]:
    """``{label: {seed: run_dir/ckpt/<table>/<name>/seed<k>/<which>.pt}}`` for ``names``
    (label -> run folder name). Refused with a :class:`ParameterError` that lists every
    missing file and says that ``made_by`` writes them."""
    if not isinstance(names, Mapping) or not names:
        raise ParameterError(f"names must map model labels to checkpoint folder names, got {names!r}")
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise ParameterError(f"seeds must be a non-empty list of ints, got {seeds!r}")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ParameterError(f"seeds must hold ints >= 0, got {s!r}")
    if which not in ("best", "last"):
        raise ParameterError(f"which must be 'best' or 'last', got {which!r}")
    for key, value in (("table", table), *((f"names[{k!r}]", v) for k, v in names.items())):
        if not isinstance(value, str) or not value or "/" in value:
            raise ParameterError(f"{key} must be a folder name, got {value!r}")
    root = resolve(run_dir) / "ckpt" / table
    out = {label: {s: root / name / f"seed{s}" / f"{which}.pt" for s in seeds} for label, name in names.items()}
    missing = [p for by_seed in out.values() for p in by_seed.values() if not p.is_file()]
    if missing:
        raise ParameterError(
            f"{len(missing)} checkpoint(s) missing: {', '.join(str(p) for p in missing)}. {made_by} writes them "
            f"into {resolve(run_dir)}; run it first with the same profile and run folder (this notebook does not train)"
        )
    return out


@dataclass
class Study:
    """What :func:`interpret_checkpoints` measured.

    ``scores``: one row per (model, seed, slice) with ``k``, ``n`` (pixels) and the
    scores; ``maps``: per model, the figure slice's cluster map (first seed), coloured
    like the tissue map (-1 outside the scored region); ``samples``: per model the
    figure slice's stratified pixel sample for t-SNE (``features``, ``labels`` or None,
    ``clusters`` in map colours); ``layers``: per model, the hooked layer; ``pca``: per
    model, the figure slice's features as an H x W x 3 image of their first three principal
    components (black outside the region)."""

    scores: pd.DataFrame
    maps: dict[str, np.ndarray]
    samples: dict[str, dict[str, np.ndarray | None]]
    figure_slice: int
    labelled: bool
    region: str
    layers: dict[str, str] = field(default_factory=dict)
    pca: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def metrics(self) -> list[str]:
        """The scores this study has (label scores only with tissue labels)."""
        return list(LABEL_SCORES + UNLABELLED_SCORES) if self.labelled else list(UNLABELLED_SCORES)

    def __repr__(self) -> str:
        models = sorted(self.scores["model"].unique()) if len(self.scores) else []
        return (f"Study(models={models}, rows={len(self.scores)}, labelled={self.labelled}, region={self.region!r}, "
                f"figure_slice={self.figure_slice})")


def _load(path: Path) -> nn.Module:
    from ldct_nb.train import load_denoiser  # interpret sits above train; imported when used

    return load_denoiser(path)


def interpret_checkpoints(
    checkpoints: Mapping[str, Mapping[int, str | os.PathLike[str]]],
    split,
    *,
    slices: Sequence[int] | None = None,
    layer: str | None = None,
    n_clusters: int = 0,
    unlabelled_clusters: int = 6,
    region: str = "body",
    seed: int = 0,
    figure_slice: int | None = None,
    tsne_per_class: int = 60,
    silhouette_per_class: int = 300,
    window=None,
    device: str | torch.device = "cpu",
    loader: Callable[[Path], nn.Module] | None = None,
    progress: bool = True,
    threads: int | None = 1,
) -> Study:
    """Score every checkpoint of ``checkpoints`` ({model label: {seed: path}}) on ``slices``
    (default: all) of ``split`` (a :class:`~ldct_nb.data.cache.CacheSplit`).

    The denoiser sees the LDCT slice on ``window``'s [0, 1] scale (default: the cache's
    HU window); ``layer`` is a module name (default: the input of the output layer,
    :func:`~ldct_nb.interpret.features.default_layer`). K-means runs per slice on the
    pixels of ``region`` with ``k = n_clusters``, or when 0 the number of tissue classes
    present there (``unlabelled_clusters`` without labels), seeded with ``seed``.
    ``loader`` turns a path into an eval-mode denoiser (default
    :func:`ldct_nb.train.load_denoiser`). ``threads``: CPU threads of torch and scikit-learn
    (:func:`~ldct_nb.interpret.clusters.limit_threads`; None for the libraries' defaults)."""
    from ldct_nb.data.datasets import HUWindow

    if not isinstance(checkpoints, Mapping) or not checkpoints:
        raise ParameterError(f"checkpoints must map model labels to {{seed: path}}, got {checkpoints!r}")
    for label, by_seed in checkpoints.items():
        if not isinstance(by_seed, Mapping) or not by_seed:
            raise ParameterError(f"checkpoints[{label!r}] must map seeds to checkpoint paths, got {by_seed!r}")
    if region not in REGIONS:
        raise ParameterError(f"region must be one of {REGIONS}, got {region!r}")
    for name, value, minimum in (("n_clusters", n_clusters, 0), ("unlabelled_clusters", unlabelled_clusters, 2),
                                 ("seed", seed, 0), ("tsne_per_class", tsne_per_class, 2),
                                 ("silhouette_per_class", silhouette_per_class, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ParameterError(f"{name} must be an int >= {minimum}, got {value!r}")
    if n_clusters == 1:
        raise ParameterError("n_clusters must be 0 (the number of tissue classes present) or >= 2, got 1")
    n_total = len(split)
    slices = list(range(n_total)) if slices is None else list(slices)
    bad = [i for i in slices if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < n_total]
    if not slices or bad:
        raise ParameterError(f"slices must be a non-empty list of indices in 0 .. {n_total - 1}, got {bad or slices}")
    figure_slice = slices[0] if figure_slice is None else figure_slice
    if figure_slice not in slices:
        raise ParameterError(f"figure_slice {figure_slice!r} is not one of the scored slices {slices}")
    hu_window = HUWindow(*split.hu_window) if window is None else window
    labelled = split.labels is not None
    tissue_names = split.tissues
    air = tissue_names.index("air") if "air" in tissue_names else 0
    load = loader or _load

    rows, maps, samples, layers, pca = [], {}, {}, {}, {}
    with limit_threads(threads):
        jobs = [(label, s, Path(p)) for label, by_seed in checkpoints.items() for s, p in sorted(by_seed.items())]
        bar = progress_bar(total=len(jobs) * len(slices), desc="features, K-means", disable=not progress)
        for label, model_seed, path in jobs:
            net = load(path)
            try:
                net = net.to(device)
            except (RuntimeError, TypeError) as exc:
                raise ParameterError(f"cannot move the denoiser of {path} to device {device!r}: {exc}") from exc
            name, capture = (layer, "output") if layer is not None else default_layer(net)
            layers.setdefault(label, f"{name} ({capture} of the layer)")
            collapsed = 0
            for i in slices:
                ndct_hu = np.asarray(split.ndct[i], dtype=np.float32)
                lab = np.asarray(split.labels[i]) if labelled else None
                image = torch.from_numpy(np.asarray(hu_window.normalize(np.asarray(split.ldct[i], np.float32)), np.float32))
                feats = extract_features(net, image, layer=name, capture=capture)[0]  # C x H x W
                mask = body_mask(lab, ndct_hu, air_label=air) if region == "body" else np.ones(ndct_hu.shape, bool)
                x = feats.permute(1, 2, 0).numpy()[mask]  # N x C
                y = lab[mask] if labelled else None
                k = n_clusters or (int(np.unique(y).size) if labelled else unlabelled_clusters)
                if labelled and k >= 2 and np.unique(y).size < 2:
                    y = None  # one class in the region: no label score for this slice
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    res = cluster_agreement(x, y, k=k, seed=seed, silhouette_per_class=silhouette_per_class,
                                            return_clusters=True)
                collapsed += any(issubclass(w.category, CollapsedFeaturesWarning) for w in caught)
                for w in caught:  # the others pass on; the collapse is said once per checkpoint below
                    if not issubclass(w.category, CollapsedFeaturesWarning):
                        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
                clusters = res.pop("clusters")
                rows.append({"model": label, "seed": model_seed, "slice": int(i), **res})
                if i == figure_slice and label not in maps:
                    colour = (match_clusters(clusters, y, len(tissue_names)) if y is not None
                              else order_by_intensity(clusters, ndct_hu[mask]))
                    cmap = np.full(mask.shape, -1, dtype=np.int64)
                    cmap[mask] = colour[clusters]
                    maps[label] = cmap
                    strata = y if y is not None else clusters
                    pick = stratified_sample(strata, tsne_per_class, seed)
                    samples[label] = {"features": x[pick], "labels": None if y is None else y[pick],
                                      "clusters": colour[clusters][pick]}
                    rgb = np.zeros(mask.shape + (3,))
                    rgb[mask] = principal_rgb(x, seed=seed)
                    pca[label] = rgb
                bar.update(1)
            if collapsed:
                warnings.warn(f"{label} ({path}): the features of layer {name} have fewer distinct values than "
                              f"clusters on {collapsed} of {len(slices)} slice(s), so K-means finds fewer clusters "
                              "(a collapsed network or a dead layer?); its scores there measure that collapse",
                              CollapsedFeaturesWarning, stacklevel=2)
            del net
        bar.close()
    scores = pd.DataFrame(rows)
    for m in LABEL_SCORES + UNLABELLED_SCORES:
        if m not in scores:
            scores[m] = np.nan
    return Study(scores, maps, samples, int(figure_slice), labelled, region, layers, pca)


def save_study(study: Study, folder: str | os.PathLike[str], *, summary: pd.DataFrame | None = None,
               comparison: pd.DataFrame | None = None, text: Mapping[str, str] | None = None,
               extra: Mapping | None = None) -> dict[str, Path]:
    """Write the study's per-slice scores (``scores.csv``) and a ``summary.json`` (the
    summary table, the paired comparison, the sentences and ``extra`` settings) into
    ``folder``, each atomically (:func:`ldct_nb.paths.atomic_write_text`): a reader sees the
    previous or the new file, never half of one."""
    from ldct_nb.paths import atomic_write_json, atomic_write_text

    out = resolve(folder)
    paths = {"scores": out / "scores.csv", "summary": out / "summary.json"}
    atomic_write_text(paths["scores"], study.scores.to_csv(index=False))
    blob = {
        "labelled": study.labelled, "region": study.region, "figure_slice": study.figure_slice,
        "layers": dict(study.layers), "metrics": study.metrics, "extra": dict(extra or {}),
        "summary": None if summary is None else {
            str(model): {"/".join(str(p) for p in col if p): _plain(v) for col, v in row.items()}
            for model, row in summary.iterrows()},
        "comparison": None if comparison is None else {
            str(m): {k: _plain(v) for k, v in row.items()} for m, row in comparison.iterrows()},
        "reading": dict(text or {}),
    }
    atomic_write_json(paths["summary"], blob)
    return paths


def _plain(v):
    """A JSON value: NaN and infinities as None, numpy scalars as Python numbers."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (np.bool_,)):
        return bool(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not np.isfinite(f):
        return None
    return int(f) if isinstance(v, (int, np.integer)) else f
