"""K-means on denoiser features and how well the clusters follow the anatomy (ASCON sec. 3.2,
Fig. 3, measured).

ASCON clusters the features before the last layer with K-means, shows the clusters in
image space and their t-SNE, and reads them: with MAC-Net the clustering looks like an
organ segmentation, "the intra-class distribution is more compact, as well as the
inter-class separation is more obvious". With the benchmark's tissue labels those
statements become numbers (:func:`cluster_agreement`):

* ``ari``, ``nmi``: adjusted Rand index and normalised mutual information of the K-means
  clusters against the tissue labels (scikit-learn);
* ``silhouette``: mean silhouette of the *tissue labels* in feature space (compact and
  separated tissues give values near 1); ``silhouette_clusters``: the same for the
  K-means clusters, which needs no labels;
* ``intra``, ``inter``: mean distance of a pixel's features to its tissue's centroid
  (averaged per tissue, so every tissue counts the same) and mean distance between
  tissue centroids, both divided by the RMS distance of all features to their mean, so
  they do not change when a network scales its features; ``intra_inter`` is their ratio
  ("more compact and more separated" = a smaller ratio).

Silhouettes use a class-stratified subsample (:func:`stratified_sample`), so a large
tissue (fat, air) does not drown a small one (lesions, vessels).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.manifold import TSNE
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

from ldct_nb.errors import ParameterError

__all__ = [
    "CollapsedFeaturesWarning", "LABEL_SCORES", "SCORES", "UNLABELLED_SCORES", "body_mask", "cluster_agreement", "kmeans_clusters",
    "limit_threads", "match_clusters", "principal_rgb", "separation", "stratified_sample", "tsne_embedding",
]

LABEL_SCORES = ("ari", "nmi", "silhouette", "intra", "inter", "intra_inter")
"""Scores that need tissue labels."""
UNLABELLED_SCORES = ("silhouette_clusters",)
"""Scores that need no labels (real data)."""
SCORES = LABEL_SCORES + UNLABELLED_SCORES
HIGHER_IS_BETTER = {"ari": True, "nmi": True, "silhouette": True, "silhouette_clusters": True,
                    "intra": False, "inter": True, "intra_inter": False}
"""The direction in which each score reads as "more anatomical"."""


# ----------------------------------------------------------------------------- validation


def _int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _features(features, name: str = "features") -> np.ndarray:
    try:
        f = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name} must be a numeric N x C array, got {type(features).__name__}") from exc
    if f.ndim != 2 or f.shape[0] < 2 or f.shape[1] < 1:
        raise ParameterError(f"{name} must be an N x C array with N >= 2 pixels and C >= 1 channels, got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ParameterError(f"{name} hold NaN or infinite values")
    return f


def _labels(labels, n: int, name: str = "labels") -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != n:
        raise ParameterError(f"{name} must be a 1-D array of {n} labels (one per feature row), got shape {lab.shape}")
    if not (np.issubdtype(lab.dtype, np.integer) or np.issubdtype(lab.dtype, np.bool_)):
        if not np.issubdtype(lab.dtype, np.floating) or not np.all(np.isfinite(lab)) or np.any(lab != np.round(lab)):
            raise ParameterError(f"{name} must hold integer class labels, got dtype {lab.dtype}")
    return lab.astype(np.int64)


# ----------------------------------------------------------------------------- pieces


def stratified_sample(labels, per_class: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``per_class`` rows of each class of ``labels``, drawn
    without replacement with ``numpy.random.default_rng(seed)`` (every row of a class
    smaller than ``per_class``)."""
    lab = np.asarray(labels).reshape(-1)
    per_class = _int("per_class", per_class, 1)
    rng = np.random.default_rng(_int("seed", seed, 0))
    keep = []
    for c in np.unique(lab):
        rows = np.flatnonzero(lab == c)
        keep.append(rows if rows.size <= per_class else rng.choice(rows, per_class, replace=False))
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


class CollapsedFeaturesWarning(UserWarning):
    """K-means asked for more clusters than the features have distinct rows (a dead layer
    or a collapsed network): fewer clusters are found, and the scores measure that."""


def kmeans_clusters(features, k: int, *, seed: int = 0, n_init: int = 3, fit_rows: int | None = 20000) -> np.ndarray:
    """K-means (scikit-learn, k-means++ initialisation, ``n_init`` restarts, ``random_state=seed``)
    fitted on at most ``fit_rows`` rows drawn at random (all rows when ``None``), then every row
    assigned to its nearest centre: an int array of N cluster ids in ``0 .. k-1``."""
    f = _features(features)
    k = _int("k", k, 1)
    if k > f.shape[0]:
        raise ParameterError(f"k = {k} clusters need at least {k} feature rows, got {f.shape[0]}")
    seed = _int("seed", seed, 0)
    n_init = _int("n_init", n_init, 1)
    fit = f
    if fit_rows is not None:
        fit_rows = _int("fit_rows", fit_rows, k)
        if f.shape[0] > fit_rows:
            fit = f[np.sort(np.random.default_rng(seed).choice(f.shape[0], fit_rows, replace=False))]
    distinct = np.unique(fit, axis=0).shape[0]
    if distinct < k:
        # scikit-learn would only say "Number of distinct clusters found smaller than n_clusters".
        warnings.warn(f"k-means with k = {k}: the features have only {distinct} distinct row(s), so at most "
                      f"{distinct} cluster(s) are found (a collapsed network or a dead layer?); the scores of "
                      "this map measure that collapse", CollapsedFeaturesWarning, stacklevel=2)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Number of distinct clusters")  # said above
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(fit)
    return km.predict(f).astype(np.int64)


def separation(features, labels) -> dict[str, float]:
    """``intra``, ``inter`` and ``intra_inter`` of the module docstring (needs two classes).

    ``intra`` = mean over classes of the mean Euclidean distance of the class's rows to
    the class centroid; ``inter`` = mean Euclidean distance over pairs of class centroids;
    both divided by ``sqrt(mean ||f_i - mean(f)||^2)`` over all rows."""
    f = _features(features)
    lab = _labels(labels, f.shape[0])
    classes = np.unique(lab)
    if classes.size < 2:
        raise ParameterError(f"separation needs at least two classes in labels, got {classes.tolist()}")
    scale = float(np.sqrt(np.mean(np.sum((f - f.mean(0)) ** 2, axis=1))))
    if scale == 0.0:
        return {"intra": float("nan"), "inter": float("nan"), "intra_inter": float("nan")}
    centroids = np.stack([f[lab == c].mean(0) for c in classes])
    intra = float(np.mean([np.linalg.norm(f[lab == c] - centroids[i], axis=1).mean() for i, c in enumerate(classes)]))
    iu = np.triu_indices(classes.size, 1)
    inter = float(np.linalg.norm(centroids[:, None] - centroids[None], axis=-1)[iu].mean())
    return {"intra": intra / scale, "inter": inter / scale, "intra_inter": intra / inter if inter > 0 else float("inf")}


def _silhouette(f: np.ndarray, groups: np.ndarray, per_class: int, seed: int) -> float:
    rows = stratified_sample(groups, per_class, seed)
    g = groups[rows]
    if np.unique(g).size < 2 or np.unique(g).size >= rows.size:
        return float("nan")
    return float(silhouette_score(f[rows], g, metric="euclidean"))


def cluster_agreement(
    features,
    labels=None,
    k: int | None = None,
    seed: int = 0,
    *,
    n_init: int = 3,
    fit_rows: int | None = 20000,
    silhouette_per_class: int = 300,
    return_clusters: bool = False,
) -> dict:
    """K-means of ``features`` (N x C) and its agreement with the tissue ``labels`` (N).

    ``k`` defaults to the number of classes present in ``labels``; without labels (real
    data) ``k`` is required and only the label-free scores are returned. Returns a dict
    with ``k``, ``n`` and the scores of the module docstring (``ari``, ``nmi``,
    ``silhouette``, ``silhouette_clusters``, ``intra``, ``inter``, ``intra_inter``); with
    ``return_clusters`` also ``clusters`` (N cluster ids). Deterministic for a ``seed``.
    A class with one row has no silhouette (NaN when fewer than two classes remain)."""
    f = _features(features)
    seed = _int("seed", seed, 0)
    lab = None if labels is None else _labels(labels, f.shape[0])
    if k is None:
        if lab is None:
            raise ParameterError("k is required when there are no labels (it defaults to the number of tissue classes)")
        k = int(np.unique(lab).size)
        if k < 2:
            raise ParameterError(f"labels hold a single class ({int(lab[0])}): the clustering cannot be scored; pass k")
    k = _int("k", k, 2)
    clusters = kmeans_clusters(f, k, seed=seed, n_init=n_init, fit_rows=fit_rows)
    per_class = _int("silhouette_per_class", silhouette_per_class, 2)
    out: dict = {"k": k, "n": int(f.shape[0]),
                 "silhouette_clusters": _silhouette(f, clusters, per_class, seed)}
    if lab is not None:
        out["ari"] = float(adjusted_rand_score(lab, clusters))
        out["nmi"] = float(normalized_mutual_info_score(lab, clusters))
        out["silhouette"] = _silhouette(f, lab, per_class, seed)
        if np.unique(lab).size >= 2:
            out.update(separation(f, lab))
    if return_clusters:
        out["clusters"] = clusters
    return out


def match_clusters(clusters, labels, n_labels: int | None = None) -> np.ndarray:
    """A map ``cluster id -> label`` that pairs clusters and labels one to one so that the
    most pixels agree (Hungarian assignment on the contingency table,
    ``scipy.optimize.linear_sum_assignment``); clusters left over get labels from
    ``n_labels`` on, in order. Used to colour a cluster map like the tissue map."""
    c = np.asarray(clusters).reshape(-1).astype(np.int64)
    lab = _labels(np.asarray(labels).reshape(-1), c.size)
    if c.size == 0 or c.min() < 0 or lab.min() < 0:
        raise ParameterError("clusters and labels must be non-empty arrays of ids >= 0")
    n_clusters = int(c.max()) + 1
    n_labels = int(lab.max()) + 1 if n_labels is None else _int("n_labels", n_labels, int(lab.max()) + 1)
    table = np.zeros((n_clusters, n_labels), dtype=np.int64)
    np.add.at(table, (c, lab), 1)
    rows, cols = linear_sum_assignment(-table)
    mapping = np.full(n_clusters, -1, dtype=np.int64)
    mapping[rows] = cols
    spare = [i for i in range(n_clusters) if mapping[i] < 0]
    mapping[spare] = n_labels + np.arange(len(spare))
    return mapping


def order_by_intensity(clusters, intensity) -> np.ndarray:
    """A map ``cluster id -> rank`` of the clusters by their mean ``intensity`` (HU): colours
    of unlabelled cluster maps that mean the same in every model's map."""
    c = np.asarray(clusters).reshape(-1).astype(np.int64)
    v = np.asarray(intensity, dtype=np.float64).reshape(-1)
    if v.shape != c.shape:
        raise ParameterError(f"intensity must have one value per cluster id ({c.size}), got {v.size}")
    n = int(c.max()) + 1
    means = np.array([v[c == i].mean() if np.any(c == i) else np.inf for i in range(n)])
    mapping = np.empty(n, dtype=np.int64)
    mapping[np.argsort(means, kind="stable")] = np.arange(n)
    return mapping


def body_mask(labels: np.ndarray | None = None, ndct_hu: np.ndarray | None = None, *, air_label: int = 0,
              threshold_hu: float = -500.0) -> np.ndarray:
    """The pixels inside the body, H x W bool: with tissue labels, every pixel whose label is
    not ``air_label``; without (real data), the NDCT above ``threshold_hu`` with its holes
    filled (``scipy.ndimage.binary_fill_holes``, which puts the lungs back in)."""
    if labels is not None:
        lab = np.asarray(labels)
        if lab.ndim != 2:
            raise ParameterError(f"labels must be an H x W tissue map, got shape {lab.shape}")
        return lab != air_label
    if ndct_hu is None:
        raise ParameterError("body_mask needs tissue labels or the NDCT image in HU")
    hu = np.asarray(ndct_hu, dtype=np.float64)
    if hu.ndim != 2:
        raise ParameterError(f"ndct_hu must be an H x W image, got shape {hu.shape}")
    return ndimage.binary_fill_holes(hu > threshold_hu)


def tsne_embedding(features, *, seed: int = 0, perplexity: float = 30.0, threads: int | None = 1) -> np.ndarray:
    """2-D t-SNE (scikit-learn, Barnes-Hut, PCA initialisation, ``random_state=seed``) of the
    N x C rows; the perplexity is lowered to (N - 1) / 3 for small N. Deterministic for a
    seed. ``threads``: CPU threads, see :func:`limit_threads`."""
    f = _features(features)
    if f.shape[0] < 4:
        raise ParameterError(f"t-SNE needs at least 4 rows, got {f.shape[0]}")
    if isinstance(perplexity, bool) or not isinstance(perplexity, (int, float)) or not perplexity > 0:
        raise ParameterError(f"perplexity must be a number > 0, got {perplexity!r}")
    p = min(float(perplexity), (f.shape[0] - 1) / 3.0)
    seed = _int("seed", seed, 0)
    with limit_threads(threads):
        return TSNE(n_components=2, perplexity=p, init="pca", random_state=seed).fit_transform(f)


def limit_threads(threads: int | None = 1):
    """A context that limits the OpenMP / BLAS thread pools of the process (scikit-learn,
    numpy, and torch's OpenMP pool on CPU; ``threadpoolctl``) to ``threads``; ``None``
    leaves the libraries' defaults.

    One thread is the default of this package's clustering and t-SNE: on a few thousand
    pixels the threads cost more than they save, and far more on a busy machine
    (measured on a 2-core machine shared with other jobs: K-means and silhouettes of 8
    slices of 64 x 64 pixels 9.2 s with the default threads, 0.9 s with one; t-SNE of
    220 points 9.5 s against 0.85 s)."""
    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits

    if threads is None:
        return nullcontext()
    return threadpool_limits(limits=_int("threads", threads, 1))


def principal_rgb(features, *, seed: int = 0) -> np.ndarray:
    """The first three principal components of the N x C rows (scikit-learn PCA, fewer when
    C < 3, the rest zero) as N x 3 colours in [0, 1]: each component is clipped to its 1st
    and 99th percentiles and scaled, and its sign is fixed so that its largest loading is
    positive (two runs that differ by a sign look the same)."""
    from sklearn.decomposition import PCA

    f = _features(features)
    n = min(3, f.shape[1], f.shape[0])
    if not np.ptp(f, axis=0).any():  # constant features: no component to show (PCA would divide by zero)
        return np.full((f.shape[0], 3), 0.5)
    comps = PCA(n_components=n, random_state=_int("seed", seed, 0)).fit(f)
    signs = np.sign(comps.components_[np.arange(n), np.abs(comps.components_).argmax(1)])
    z = comps.transform(f) * np.where(signs == 0, 1.0, signs)
    rgb = np.zeros((f.shape[0], 3))
    for j in range(n):
        lo, hi = np.percentile(z[:, j], [1, 99])
        rgb[:, j] = np.clip((z[:, j] - lo) / (hi - lo), 0, 1) if hi > lo else 0.5
    return rgb


def present_classes(labels: np.ndarray, names: Sequence[str]) -> list[str]:
    """Names of the classes present in ``labels`` (ids into ``names``)."""
    return [names[i] for i in np.unique(np.asarray(labels)) if 0 <= i < len(names)]
