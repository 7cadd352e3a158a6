"""CNR and per-tissue error on constructed images with hand-computed answers."""
from __future__ import annotations

import numpy as np
import pytest

from ldct_nb.errors import ParameterError
from ldct_nb.eval.regions import cnr, lesion_cnr_table, tissue_error_table


def test_cnr_hand_value():
    img = np.zeros((10, 10))
    img[:, 5:] = [1.0, -1.0] * 2 + [1.0]  # background columns 5..9: values +-1, std ~0.98
    img[2:4, 1:3] = 10.0
    roi = np.zeros_like(img, bool)
    roi[2:4, 1:3] = True
    bg = np.zeros_like(img, bool)
    bg[:, 5:] = True
    expected = abs(10.0 - img[bg].mean()) / img[bg].std()
    assert cnr(img, roi, bg) == pytest.approx(expected)
    with pytest.raises(ParameterError, match="overlap"):
        cnr(img, roi, roi | bg)


def test_lesion_cnr_table_finds_each_lesion_and_ranks_noise():
    rng = np.random.default_rng(0)
    tissues = ["air", "liver", "lesion"]
    labels = np.ones((2, 32, 32), np.uint8)
    labels[:, 10:16, 10:16] = 2
    clean = np.where(labels == 2, 80.0, 40.0)
    noisy = clean + rng.normal(0, 20, clean.shape)
    table = lesion_cnr_table({"clean+": clean + rng.normal(0, 2, clean.shape), "noisy": noisy}, labels, tissues, reference=clean)
    assert len(table) == 4  # one lesion per slice, two images
    by = table.groupby("image")["cnr"].mean()
    assert by["clean+"] > 5 * by["noisy"]  # 40 HU contrast over 2 HU versus 20 HU of noise
    assert table["contrast_hu"].between(30, 50).all()


def test_tissue_error_std_and_bias():
    tissues = ["air", "fat", "muscle"]
    labels = np.zeros((1, 20, 20), np.uint8)
    labels[0, :10] = 1
    labels[0, 10:] = 2
    target = np.zeros((1, 20, 20))
    image = target.copy()
    image[0, 10:] = 5.0 + np.tile([1.0, -1.0], (10, 10))  # muscle: bias 5, std 1
    t = tissue_error_table({"m": image}, target, labels, tissues).set_index("tissue")
    assert t.loc["fat", "std_hu"] == 0 and t.loc["muscle", "std_hu"] == pytest.approx(1.0)
    assert t.loc["muscle", "bias_hu"] == pytest.approx(5.0) and "air" not in t.index
