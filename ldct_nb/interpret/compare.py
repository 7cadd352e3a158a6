"""Scores of two models side by side: mean and spread over slices and seeds, a paired test
over slices, and the sentences that read them.

Pairing: a model's score on a slice is averaged over its seeds first, then the two
models are paired slice by slice and compared with the Wilcoxon signed-rank test
(``scipy.stats.wilcoxon``, two-sided; zero differences dropped, as Wilcoxon did; exact
null distribution for up to 50 slices without ties, normal approximation otherwise).
With n slices the smallest two-sided p-value it can give is 2 / 2**n: 0.125 for 4
slices, so a smoke run can never be "significant".
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ldct_nb.errors import ParameterError
from ldct_nb.interpret.clusters import HIGHER_IS_BETTER

__all__ = ["NAMES", "compare_models", "paired_test", "reading", "summarize"]

NAMES = {
    "ari": "ARI", "nmi": "NMI", "silhouette": "silhouette of the tissues", "silhouette_clusters":
    "silhouette of the clusters", "intra": "intra-class distance", "inter": "inter-class distance",
    "intra_inter": "intra / inter distance ratio",
}
"""How the text names each score."""
TEST_NAME = "Wilcoxon signed-rank test over slices (scipy.stats.wilcoxon, two-sided)"


def _check_scores(scores: pd.DataFrame, metrics: Sequence[str]) -> None:
    if not isinstance(scores, pd.DataFrame):
        raise ParameterError(f"scores must be a pandas DataFrame, got {type(scores).__name__}")
    need = {"model", "seed", "slice", *metrics}
    missing = sorted(need - set(scores.columns))
    if missing:
        raise ParameterError(f"scores lack the column(s) {missing}; columns: {list(scores.columns)}")


def summarize(scores: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """One row per model: for each metric its mean over slices and seeds, ``std_slices``
    (standard deviation over slices of the seed-averaged scores) and ``std_seeds``
    (standard deviation over seeds of the slice-averaged scores; NaN for one seed);
    columns ``(metric, statistic)``, ``n_slices`` and ``n_seeds``."""
    metrics = list(metrics)
    _check_scores(scores, metrics)
    rows = {}
    for model, g in scores.groupby("model", sort=False):
        per_slice = g.groupby("slice")[metrics].mean()
        per_seed = g.groupby("seed")[metrics].mean()
        row = {}
        for m in metrics:
            row[(m, "mean")] = float(per_slice[m].mean())
            row[(m, "std_slices")] = float(per_slice[m].std(ddof=1)) if len(per_slice) > 1 else float("nan")
            row[(m, "std_seeds")] = float(per_seed[m].std(ddof=1)) if len(per_seed) > 1 else float("nan")
        row[("n_slices", "")] = len(per_slice)
        row[("n_seeds", "")] = len(per_seed)
        rows[model] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    out.index.name = "model"
    return out


def paired_test(a, b) -> dict:
    """Wilcoxon signed-rank test of the paired samples ``a`` and ``b`` (two-sided, zero
    differences dropped). Returns ``n`` (pairs), ``n_nonzero``, ``statistic``, ``p_value``,
    ``median_difference`` (of b - a) and ``test`` (its name). All-zero differences give ``p_value`` 1 and a NaN statistic."""
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ParameterError(f"paired samples must have the same length, got {x.size} and {y.size}")
    if x.size < 1:
        raise ParameterError("paired_test needs at least one pair")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ParameterError("paired samples hold NaN or infinite values")
    d = y - x
    nonzero = int(np.count_nonzero(d))
    out = {"n": int(x.size), "n_nonzero": nonzero, "median_difference": float(np.median(d)), "test": TEST_NAME}
    if nonzero == 0:
        return {**out, "statistic": float("nan"), "p_value": 1.0}
    res = stats.wilcoxon(x, y, zero_method="wilcox", alternative="two-sided")
    return {**out, "statistic": float(res.statistic), "p_value": float(res.pvalue)}


def compare_models(scores: pd.DataFrame, baseline: str, candidate: str, metrics: Sequence[str]) -> pd.DataFrame:
    """One row per metric: both models' means, the paired test over the slices both have
    (seed-averaged), on how many slices ``candidate`` is better (in the metric's direction,
    :data:`~ldct_nb.interpret.clusters.HIGHER_IS_BETTER`), and ``candidate_better``: True
    / False for the direction of the median difference, None when it is zero."""
    metrics = list(metrics)
    _check_scores(scores, metrics)
    models = set(scores["model"])
    for name, value in (("baseline", baseline), ("candidate", candidate)):
        if value not in models:
            raise ParameterError(f"{name} {value!r} is not a model of the scores; models: {sorted(models)}")
    a = scores[scores["model"] == baseline].groupby("slice")[metrics].mean()
    b = scores[scores["model"] == candidate].groupby("slice")[metrics].mean()
    common = a.index.intersection(b.index)
    if len(common) == 0:
        raise ParameterError(f"{baseline!r} and {candidate!r} share no slice: nothing to pair")
    rows = []
    for m in metrics:
        x, y = a.loc[common, m].to_numpy(), b.loc[common, m].to_numpy()
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        sign = 1.0 if HIGHER_IS_BETTER.get(m, True) else -1.0
        if x.size == 0:
            rows.append({"metric": m, baseline: float("nan"), candidate: float("nan"), "n": 0, "candidate_wins": 0,
                         "median_difference": float("nan"), "statistic": float("nan"), "p_value": float("nan"),
                         "candidate_better": None, "test": TEST_NAME})
            continue
        t = paired_test(x, y)
        med = t["median_difference"] * sign
        rows.append({
            "metric": m, baseline: float(x.mean()), candidate: float(y.mean()), "n": t["n"],
            "candidate_wins": int(np.sum(sign * (y - x) > 0)), "median_difference": t["median_difference"],
            "statistic": t["statistic"], "p_value": t["p_value"],
            "candidate_better": None if med == 0 else bool(med > 0), "test": TEST_NAME,
        })
    return pd.DataFrame(rows).set_index("metric")


def _fmt(v: float) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def reading(comparison: pd.DataFrame, baseline: str, candidate: str, *, alpha: float = 0.05) -> dict[str, str]:
    """Sentences that read a :func:`compare_models` table: one per metric (``comparison.index``)
    and a ``verdict``. A metric "supports" the paper's claim when the candidate is better in
    its direction and the paired test gives p < ``alpha``; the verdict says so whichever way
    the numbers go (also when the candidate is worse or no different)."""
    if not 0 < alpha < 1:
        raise ParameterError(f"alpha must be in (0, 1), got {alpha!r}")
    out: dict[str, str] = {}
    support, against, unclear = [], [], []
    for m, r in comparison.iterrows():
        name = NAMES.get(m, m)
        direction = "higher" if HIGHER_IS_BETTER.get(m, True) else "lower"
        if r["n"] == 0:
            out[m] = f"The {name} could not be computed (no slice has it for both models)."
            unclear.append(name)
            continue
        better = r["candidate_better"]
        better = None if better is None or (isinstance(better, float) and math.isnan(better)) else bool(better)
        where = f"better on {r['candidate_wins']} of {r['n']} slices"
        p = r["p_value"]
        if better is None:
            verdict = "no different from"
        elif better:
            verdict = f"better ({direction}) than"
        else:
            verdict = f"worse (not {direction}) than"
        text = (f"{candidate}'s {name} is {_fmt(r[candidate])} against {_fmt(r[baseline])} for {baseline}: "
                f"{verdict} the baseline, {where} (two-sided Wilcoxon p = {p:.3g}).")
        if better and p < alpha:
            support.append(name)
        elif better is False and p < alpha:
            against.append(name)
            text += " The difference is significant in the baseline's favour."
        else:
            unclear.append(name)
            if r["n"] < 6:
                text += f" With {r['n']} slices the test cannot reach p < {alpha:g} (its smallest p is {2 / 2 ** r['n']:.3g})."
        out[m] = text
    if support and not against:
        verdict = (f"On this run the measurements support the paper's reading: {candidate}'s features follow the "
                   f"tissues better than {baseline}'s by the {', '.join(support)}")
        verdict += f" (no clear difference by the {', '.join(unclear)})." if unclear else "."
    elif against and not support:
        verdict = (f"On this run the paper's reading is not reproduced: {baseline}'s features follow the tissues "
                   f"better than {candidate}'s by the {', '.join(against)}")
        verdict += f" (no clear difference by the {', '.join(unclear)})." if unclear else "."
    elif support and against:
        verdict = (f"On this run the scores disagree: {candidate} is better by the {', '.join(support)} and "
                   f"{baseline} by the {', '.join(against)}; the paper's reading is not clearly reproduced.")
    else:
        verdict = (f"On this run no score separates the two models at p < {alpha:g}: the paper's reading "
                   f"(more compact, better separated anatomy with MAC-Net) is neither confirmed nor refuted here.")
    out["verdict"] = verdict
    return out
