"""GLCM radiomics against pyradiomics' own values on fixed arrays (tests/data, computed once
outside the project with pyradiomics-bhklab) and hand-computed cases."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from skimage.feature import graycomatrix, graycoprops

from ldct_nb.errors import ParameterError
from ldct_nb.eval.radiomics import box_features, discretize, feature_differences, glcm_features

GOLDEN = json.loads((Path(__file__).parent / "data" / "pyradiomics_glcm_golden.json").read_text())


@pytest.mark.parametrize("name", ["noise", "blob", "gradient"])
def test_glcm_features_equal_pyradiomics(name):
    case = GOLDEN[name]
    ours = glcm_features(np.array(case["array"]))
    assert ours["correlation"] == pytest.approx(case["Correlation"], abs=1e-9)
    assert ours["homogeneity"] == pytest.approx(case["Idm"], abs=1e-9)
    assert ours["energy"] == pytest.approx(case["JointEnergy"], abs=1e-9)


def test_discretisation_is_pyradiomics_fixed_bin_width():
    # min 7 -> lower bound 0; edges 0, 25, 50, ...: 7 -> 1, 24.9 -> 1, 25 -> 2, 60 -> 3
    assert discretize(np.array([7.0, 24.9, 25.0, 60.0])).tolist() == [1, 1, 2, 3]
    # a negative minimum: -30 -> lower bound -50 (Python's modulo), so -30 is in bin 1 and -20 in bin 2
    assert discretize(np.array([-30.0, -20.0])).tolist() == [1, 2]


def test_hand_computed_two_level_image():
    """Columns alternate 0 / 30 HU (bins 1, 2). Horizontal pairs always differ, vertical pairs never;
    diagonal pairs always differ. Per angle (symmetric, normalised): energy 0.5 and homogeneity 0.5
    for the three 'differ' angles, energy 0.5 and homogeneity 1 for the vertical one: means 0.5 and 0.625."""
    img = np.tile([0.0, 30.0], (6, 3))
    f = glcm_features(img)
    assert f["energy"] == pytest.approx(0.5)
    assert f["homogeneity"] == pytest.approx((0.5 * 3 + 1.0) / 4)
    m = graycomatrix(discretize(img), [1], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=3, symmetric=True, normed=True)
    assert np.sqrt(f["energy"]) == pytest.approx(graycoprops(m, "energy").mean())  # skimage energy = sqrt(JointEnergy)


def test_box_features_and_differences():
    rng = np.random.default_rng(0)
    ndct = 40 + 30 * rng.standard_normal((32, 32))
    boxes = np.array([[4, 4, 14, 12], [16, 18, 30, 30]], float)
    same = feature_differences([ndct], [ndct], [boxes])
    assert same["lesions"] == 2 and all(same[k] == 0 for k in ("correlation", "homogeneity", "energy"))
    smooth = feature_differences([np.full_like(ndct, 40.0)], [ndct], [boxes])
    assert smooth["homogeneity"] > 0.1  # a flat region is perfectly homogeneous, the noisy one is not
    crop = box_features(ndct, boxes[:1])[0]
    assert crop == glcm_features(ndct[4:12, 4:14])
    with pytest.raises(ParameterError, match="leaves the 32 x 32 image"):
        box_features(ndct, [[20, 20, 40, 30]])
    with pytest.raises(ParameterError, match="at least 2 x 2"):
        glcm_features(np.zeros(5))
