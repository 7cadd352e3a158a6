"""Per-lesion contrast-to-noise ratio (ldct_nb.data.difficulty) on cases with known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ldct_nb.data.difficulty import lesion_cnr, phantom_lesion_cnr, summarise_cnr
from ldct_nb.data.phantom import make_phantom
from ldct_nb.data.simulate import reconstruct_noise_free, simulate_pair
from ldct_nb.errors import ParameterError

SIZE = 96


def _disc_scene(contrast: float, radius: float = 6.0, centres=((30, 30),)):
    """Flat 100 HU organ (label 1) in air-free frame with discs of ``contrast`` (lesions k = 1, 2 ...)."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    clean = np.full((SIZE, SIZE), 100.0)
    labels = np.ones((SIZE, SIZE), np.uint8)
    lesion_map = np.zeros((SIZE, SIZE), np.int64)
    for k, (cy, cx) in enumerate(centres, start=1):
        disc = np.hypot(yy - cy, xx - cx) <= radius
        clean[disc] += contrast
        labels[disc] = 2
        lesion_map[disc] = k
    return clean, labels, lesion_map


def test_cnr_of_a_disc_in_white_noise() -> None:
    """Contrast 30 HU, noise sigma 10 HU: CNR 3 (hand arithmetic), with the noise taken
    from image - noise_free or from the background ring."""
    clean, labels, lesion_map = _disc_scene(30.0)
    noisy = clean + np.random.default_rng(0).normal(0.0, 10.0, clean.shape)
    (with_ref,) = lesion_cnr(noisy, lesion_map, labels, noise_free=clean)
    (clinical,) = lesion_cnr(noisy, lesion_map, labels)
    for row in (with_ref, clinical):
        assert row["contrast_hu"] == pytest.approx(30.0, abs=3.5)
        assert row["noise_hu"] == pytest.approx(10.0, rel=0.15)
        assert row["cnr"] == pytest.approx(3.0, rel=0.2)
        assert row["host"] == 1 and row["pixels"] == int((lesion_map == 1).sum())
        assert row["rose"] == pytest.approx(row["cnr"] * math.sqrt(row["pixels"]))


def test_polarity_comes_from_the_reference_so_noise_cannot_fake_contrast() -> None:
    """A hypodense lesion has a positive contrast; lesions with zero true contrast have CNR
    scattered around 0 (a |mean difference| would be biased up to about 0.5 - 1)."""
    clean, labels, lesion_map = _disc_scene(-40.0)
    noisy = clean + np.random.default_rng(1).normal(0.0, 10.0, clean.shape)
    (row,) = lesion_cnr(noisy, lesion_map, labels, noise_free=clean)
    assert row["contrast_hu"] == pytest.approx(40.0, abs=4.0)
    centres = [(15 + 22 * i, 15 + 22 * j) for i in range(4) for j in range(4)]
    clean0, labels0, map0 = _disc_scene(0.0, radius=2.5, centres=centres)
    reference = clean0 + (map0 > 0) * 5.0  # polarity: "bright" lesions, invisible in the image
    values = []
    for seed in range(10):
        noisy = clean0 + np.random.default_rng(seed).normal(0.0, 10.0, clean0.shape)
        values += [r["cnr"] for r in lesion_cnr(noisy, map0, labels0, reference=reference, noise_free=clean0)]
    assert abs(float(np.mean(values))) < 0.15
    assert summarise_cnr(values)["fraction_below_1"] > 0.7


def test_hosts_pick_the_artery_around_an_embolus() -> None:
    """A dark clot (40 HU) filling a bright artery (300 HU) in lung (-850 HU): given the
    host, the contrast is against the lumen (-260 HU); the default guess (the most frequent
    neighbour) would take the lung."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    clean = np.full((SIZE, SIZE), -850.0)
    labels = np.full((SIZE, SIZE), 1, np.uint8)  # lung
    artery = np.hypot(yy - 48, xx - 48) <= 6
    clot = np.hypot(yy - 48, xx - 47) <= 4
    clean[artery], labels[artery] = 300.0, 2
    clean[clot], labels[clot] = 40.0, 3
    lesion_map = clot.astype(np.int64)
    (with_host,) = lesion_cnr(clean + 0.0, lesion_map, labels, hosts=[2], noise_free=clean - 1.0)
    assert with_host["host"] == 2 and with_host["contrast_hu"] == pytest.approx(260.0, abs=1.0)
    (guess,) = lesion_cnr(clean + 0.0, lesion_map, labels, ring_px=6, noise_free=clean - 1.0)
    assert guess["host"] == 1


def test_lesion_without_host_pixels_is_nan() -> None:
    clean, labels, lesion_map = _disc_scene(30.0)
    (row,) = lesion_cnr(clean, lesion_map, labels, hosts=[5])  # no pixel has label 5
    assert math.isnan(row["cnr"]) and row["background_pixels"] == 0


def test_summary_hand_values() -> None:
    """[0.5, 2, 3, NaN]: median 2, quartiles 1.25 and 2.5 (linear), 1 of 3 below 1, 1 without background."""
    s = summarise_cnr([0.5, 2.0, 3.0, float("nan")])
    assert s == {"lesions": 3, "median": 2.0, "q25": 1.25, "q75": 2.5, "fraction_below_1": pytest.approx(1 / 3),
                 "no_background": 1}
    assert summarise_cnr([])["lesions"] == 0


def test_quarter_dose_halves_the_cnr() -> None:
    """Noise sigma ~ 1 / sqrt(N0): at a quarter of the dose the noise doubles and the
    CNR of the same lesions halves (median ratio), the contrast staying the same."""
    sim = dict(pixel_size_mm=360.0 / 128, circle=True, filter_name="cosine")
    ratios, contrast_shift = [], []
    for seed in range(4):
        p = make_phantom(128, seed, "abdomen", lesion_kind="mass")
        nd, ld = simulate_pair(p.hu, n0_full=4e5, dose_fraction=0.25, seed=seed, **sim)
        nf = reconstruct_noise_free(p.hu, **sim)
        for a, b in zip(phantom_lesion_cnr(p, nd, noise_free=nf), phantom_lesion_cnr(p, ld, noise_free=nf)):
            ratios.append(b["noise_hu"] / a["noise_hu"])
            contrast_shift.append(abs(b["contrast_hu"] - a["contrast_hu"]))
    assert np.median(ratios) == pytest.approx(2.0, rel=0.1)
    assert np.median(contrast_shift) < 10.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image=np.zeros((4, 4, 4))), "image"),
        (dict(lesion_map=np.zeros((5, 5))), "lesion_map"),
        (dict(labels=np.zeros((5, 5))), "labels"),
        (dict(noise_free=np.zeros((5, 5))), "noise_free"),
        (dict(ring_px=0), "ring_px"),
    ],
)
def test_bad_input(kwargs: dict, message: str) -> None:
    clean, labels, lesion_map = _disc_scene(30.0)
    args = dict(image=clean, lesion_map=lesion_map, labels=labels)
    args.update(kwargs)
    with pytest.raises(ParameterError, match=message):
        lesion_cnr(args.pop("image"), args.pop("lesion_map"), args.pop("labels"), **args)


# ----------------------------------------------------------------------- studies on the shipped manifests


def test_study_of_the_ascon_benchmark_and_its_crops() -> None:
    """measure_difficulty on the shipped synthetic manifest: its phantoms are the test split's,
    every lesion gets a row whose CNR equals phantom_lesion_cnr on the returned images, and the
    crops hold the lesion's box."""
    from ldct_nb.data.difficulty import lesion_crops, measure_difficulty
    from ldct_nb.data.manifest import load_manifest

    m = load_manifest("synthetic")
    st = measure_difficulty(m, image_size=64, n_phantoms=3)
    test_seed = m.raw["generator"]["seed"] + m.raw["generator"]["split_seeds"]["test"]
    assert [p.seed for p in st.phantoms] == [test_seed, test_seed + 1, test_seed + 2]
    assert len(st.rows) == sum(len(p.boxes) for p in st.phantoms) > 0
    first = st.rows[0]
    p = st.phantoms[first["phantom"]]
    again = phantom_lesion_cnr(p, st.ldct[first["phantom"]], noise_free=st.noise_free[first["phantom"]])
    assert again[first["lesion"] - 1]["cnr"] == pytest.approx(first["cnr_ldct"])
    summary = st.summary()
    assert summary["lesions"] == len(st.rows) and 0.0 <= summary["LDCT CNR < 1"] <= 1.0
    crops = lesion_crops(st, 2)
    assert 1 <= len(crops) <= 2
    for c in crops:
        x1, y1, x2, y2 = c["box_in_crop"]
        assert c["ndct"].shape == c["ldct"].shape and c["ndct"].shape[0] >= 16
        assert 0 <= x1 < x2 <= c["ndct"].shape[1] and 0 <= y1 < y2 <= c["ndct"].shape[0]
    assert [c["cnr_ldct"] for c in crops] == sorted(c["cnr_ldct"] for c in crops)
    with pytest.raises(ParameterError, match="n_phantoms"):
        measure_difficulty(m, image_size=64, n_phantoms=0)
    with pytest.raises(ParameterError, match="synthetic"):
        measure_difficulty(load_manifest("pe_ct"), image_size=64, n_phantoms=1)


def test_low_contrast_liver_masses_are_harder_than_lung_masses_at_the_l_ct_dose() -> None:
    """The measurement that decided the L-CT analogue's anatomy: at LIDnet's L-CT noise,
    lung masses (Table 1) stay far above CNR 1 and 10-40 HU liver masses fall below it."""
    from ldct_nb.data.difficulty import measure_difficulty
    from ldct_nb.data.manifest import load_manifest

    m = load_manifest("synthetic_l_ct_a")
    lung = measure_difficulty(m, image_size=96, n_phantoms=3).summary()
    liver = measure_difficulty(m, image_size=96, n_phantoms=3, phantom_kind="abdomen", lesion_kind="mass").summary()
    assert lung["LDCT CNR median"] > 5.0 and lung["LDCT CNR < 1"] == 0.0
    assert liver["LDCT CNR median"] < 1.0 and liver["LDCT CNR < 1"] > 0.7
