"""Table builder: mean +- std over slices (seeds averaged first), the paired Wilcoxon test
against scipy and a hand-computed effect size, bold best rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ldct_nb.errors import ParameterError
from ldct_nb.eval.tables import format_table, paired_test, summary_table


def frame() -> pd.DataFrame:
    rows = []
    a = [30.0, 31.0, 32.0, 33.0, 34.0]
    b = [29.0, 31.5, 30.0, 32.0, 33.5]
    for s, (va, vb) in enumerate(zip(a, b)):
        rows.append({"row": "A", "seed": 0, "slice": s, "psnr": va - 0.5, "rmse": 0.01, "ssim": 0.9})
        rows.append({"row": "A", "seed": 1, "slice": s, "psnr": va + 0.5, "rmse": 0.01, "ssim": 0.9})
        rows.append({"row": "B", "seed": 0, "slice": s, "psnr": vb, "rmse": 0.02, "ssim": 0.8})
        rows.append({"row": "LDCT", "seed": 0, "slice": s, "psnr": 20.0 + s, "rmse": 0.05, "ssim": 0.5})
    return pd.DataFrame(rows)


def test_summary_averages_seeds_per_slice_then_slices():
    t = summary_table(frame())
    # A: seeds average to 30..34 per slice -> mean 32, population std sqrt(2)
    assert t.loc["A", "psnr"] == pytest.approx(32.0) and t.loc["A", "psnr_std"] == pytest.approx(np.sqrt(2.0))
    assert t.loc["A", "slices"] == 5 and t.loc["A", "seeds"] == 2 and t.loc["B", "seeds"] == 1
    assert list(t.index) == ["A", "B", "LDCT"]
    with pytest.raises(ParameterError, match=r"rows \['C'\] are not in the evaluation"):
        summary_table(frame(), rows=["A", "C"])


def test_paired_wilcoxon_equals_scipy_and_hand_effect_size():
    res = paired_test(frame(), "A", "B", "psnr")
    a, b = np.array([30, 31, 32, 33, 34.0]), np.array([29, 31.5, 30, 32, 33.5])
    assert res["p_value"] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    # d = 1, -0.5, 2, 1, 0.5; |d| ranks: 0.5 -> 1.5, 0.5 -> 1.5, 1 -> 3.5, 1 -> 3.5, 2 -> 5
    # W+ = 3.5 + 5 + 3.5 + 1.5 = 13.5, W- = 1.5: r = (13.5 - 1.5) / 15 = 0.8
    assert res["rank_biserial"] == pytest.approx(0.8)
    assert res["median_difference"] == pytest.approx(1.0) and res["n"] == 5
    same = paired_test(frame(), "A", "A")
    assert same["p_value"] == 1.0 and same["rank_biserial"] == 0.0


def test_format_bolds_the_best_row_but_not_the_input():
    t = format_table(summary_table(frame()))
    assert t.loc["A", "psnr"].startswith("**32.00 ± 1.41")  # best PSNR
    assert t.loc["A", "rmse"].startswith("**1.00 ± 0.00")  # RMSE x 100, lower is better
    assert not t.loc["LDCT", "ssim"].startswith("**")
