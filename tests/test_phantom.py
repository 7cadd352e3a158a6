"""Tests of the procedural CT phantoms (ldct_nb.data.phantom)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ldct_nb.data.phantom import TISSUE_HU_RANGES, TISSUES, Phantom, make_phantom
from ldct_nb.errors import ParameterError

SEEDS = (0, 1, 2, 7, 11)
KINDS = ("abdomen", "chest")
EIGHT = np.ones((3, 3), bool)


@pytest.fixture(scope="module")
def phantoms() -> dict[tuple[str, int], Phantom]:
    """256-pixel phantoms of both kinds for several seeds (built once)."""
    return {(kind, seed): make_phantom(256, seed, kind) for kind in KINDS for seed in SEEDS}


def _interior(mask: np.ndarray) -> np.ndarray:
    """Pixels whose whole 3x3 neighbourhood is in ``mask`` (unaffected by partial volume)."""
    return ndimage.binary_erosion(mask, EIGHT, border_value=0)


# ------------------------------------------------------------------ vocabulary


def test_vocabulary() -> None:
    assert TISSUES[0] == "air" and TISSUES[-1] == "lesion"
    assert len(set(TISSUES)) == len(TISSUES)
    assert set(TISSUE_HU_RANGES) == set(TISSUES)
    for lo, hi in TISSUE_HU_RANGES.values():
        assert lo <= hi
    assert TISSUE_HU_RANGES["air"] == (-1000.0, -1000.0)


# ----------------------------------------------------------------- determinism


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_identical(kind: str) -> None:
    a, b = make_phantom(96, 5, kind), make_phantom(96, 5, kind)
    np.testing.assert_array_equal(a.hu, b.hu)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.boxes, b.boxes)


@pytest.mark.parametrize("kind", KINDS)
def test_different_seeds_differ(kind: str, phantoms: dict) -> None:
    a, b = phantoms[(kind, 0)], phantoms[(kind, 1)]
    assert (a.labels != b.labels).mean() > 0.05
    assert a.boxes.shape != b.boxes.shape or not np.array_equal(a.boxes, b.boxes)
    # body outline itself varies
    assert (a.labels > 0).sum() != (b.labels > 0).sum()


def test_rng_is_local() -> None:
    np.random.seed(0)
    a = make_phantom(64, 3)
    np.random.seed(123)
    np.random.random(17)
    b = make_phantom(64, 3)
    np.testing.assert_array_equal(a.hu, b.hu)


# ------------------------------------------------------------ shapes and dtypes


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [32, 33, 100])
def test_types_and_shapes(kind: str, size: int) -> None:
    p = make_phantom(size, 4, kind, fov_mm=300.0)
    assert p.hu.shape == p.labels.shape == (size, size)
    assert p.hu.dtype == np.float32
    assert p.labels.dtype == np.uint8
    assert p.boxes.dtype == np.float32 and p.boxes.ndim == 2 and p.boxes.shape[1] == 4
    assert p.tissues == TISSUES
    assert p.kind == kind and p.seed == 4
    assert p.pixel_size_mm == pytest.approx(300.0 / size)
    assert int(p.labels.max()) < len(TISSUES)
    assert np.isfinite(p.hu).all()


def test_repr_and_mask(phantoms: dict) -> None:
    p = phantoms[("abdomen", 0)]
    text = repr(p)
    assert "abdomen" in text and "seed=0" in text and "256x256" in text
    assert f"lesions={len(p.boxes)}" in text
    assert len(text) < 200
    np.testing.assert_array_equal(p.mask("liver"), p.labels == TISSUES.index("liver"))
    assert p.mask("liver").dtype == bool
    with pytest.raises(ParameterError, match="tissue.*liver"):
        p.mask("brain")


# ---------------------------------------------------------- body and the border


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [32, 64, 256])
def test_body_inside_inscribed_circle(kind: str, size: int) -> None:
    for seed in SEEDS:
        p = make_phantom(size, seed, kind)
        yy, xx = np.mgrid[:size, :size]
        r = np.hypot(xx + 0.5 - size / 2, yy + 0.5 - size / 2)
        body = p.labels > 0
        assert body.sum() > 0.2 * size * size
        # two pixels of margin inside the inscribed circle, none at all near the border
        assert not body[r > size / 2 - 2].any()
        assert (p.hu[r > size / 2 - 2] == -1000.0).all()
        air = p.labels == 0
        assert (p.hu[air] == -1000.0).all()
        assert (p.hu >= -1000.0).all()
        # air is only outside the body: one connected background component
        _, n = ndimage.label(air)
        assert n == 1


def test_small_fov_scales_body_to_fit() -> None:
    p = make_phantom(64, 2, "chest", fov_mm=150.0)
    yy, xx = np.mgrid[:64, :64]
    r = np.hypot(xx + 0.5 - 32, yy + 0.5 - 32)
    assert not (p.labels[r > 30] > 0).any()


# ----------------------------------------------------------------------- HU


@pytest.mark.parametrize("kind", KINDS)
def test_tissue_means_within_published_ranges(kind: str, phantoms: dict) -> None:
    for seed in SEEDS:
        p = phantoms[(kind, seed)]
        for i, tissue in enumerate(TISSUES):
            core = _interior(p.labels == i)
            if core.sum() < 3:
                continue
            lo, hi = TISSUE_HU_RANGES[tissue]
            mean = float(p.hu[core].mean())
            assert lo - 1e-3 <= mean <= hi + 1e-3, (kind, seed, tissue, mean)


@pytest.mark.parametrize("kind", KINDS)
def test_large_tissue_means_including_edges(kind: str, phantoms: dict) -> None:
    """Partial volume must not drag the mean of large organs out of range."""
    big = ("fat", "muscle", "liver", "kidney") if kind == "abdomen" else ("fat", "muscle", "lung", "heart")
    for seed in SEEDS:
        p = phantoms[(kind, seed)]
        for tissue in big:
            lo, hi = TISSUE_HU_RANGES[tissue]
            assert lo <= float(p.hu[p.mask(tissue)].mean()) <= hi, (seed, tissue)


def test_liver_has_texture(phantoms: dict) -> None:
    for seed in SEEDS:
        p = phantoms[("abdomen", seed)]
        core = _interior(_interior(p.mask("liver")))
        std = float(p.hu[core].std())
        assert 1.0 < std < 30.0, (seed, std)


def test_texture_is_spatially_correlated(phantoms: dict) -> None:
    """Neighbouring liver pixels are correlated (smooth texture, not white noise)."""
    p = phantoms[("abdomen", 1)]
    core = _interior(_interior(p.mask("liver")))
    pairs = core[:, :-1] & core[:, 1:]
    left, right = p.hu[:, :-1][pairs], p.hu[:, 1:][pairs]
    assert np.corrcoef(left, right)[0, 1] > 0.5


def test_lung_parenchyma_hu(phantoms: dict) -> None:
    p = phantoms[("chest", 0)]
    lung = _interior(p.mask("lung"))
    assert -900 <= float(np.median(p.hu[lung])) <= -700
    gas = make_phantom(256, 0, "abdomen")
    g = gas.hu[_interior(gas.mask("bowel_gas"))]
    assert g.size and -1000 <= float(g.mean()) <= -900


# --------------------------------------------------------------- tissues present


REQUIRED = {
    "abdomen": ("fat", "muscle", "liver", "spleen", "kidney", "vessel", "bone", "bowel_gas", "lesion"),
    "chest": ("fat", "muscle", "lung", "heart", "vessel", "bone", "lesion"),
}


@pytest.mark.parametrize("kind", KINDS)
def test_required_tissues_present(kind: str, phantoms: dict) -> None:
    for seed in SEEDS:
        p = phantoms[(kind, seed)]
        for tissue in REQUIRED[kind]:
            assert p.mask(tissue).sum() >= 4, (kind, seed, tissue)
        assert len(p.boxes) >= 1


def test_kind_specific_tissues(phantoms: dict) -> None:
    for seed in SEEDS:
        assert not phantoms[("abdomen", seed)].mask("lung").any()
        assert not phantoms[("chest", seed)].mask("liver").any()


def test_liver_on_image_left_spleen_on_right_spine_posterior(phantoms: dict) -> None:
    for seed in SEEDS:
        p = phantoms[("abdomen", seed)]
        liver_x = np.nonzero(p.mask("liver"))[1].mean()
        spleen_x = np.nonzero(p.mask("spleen"))[1].mean()
        assert liver_x < 128 < spleen_x
        bone_rows = np.nonzero(p.mask("bone") & (np.abs(np.arange(256) - 128) < 10)[None, :])[0]
        assert bone_rows.mean() > np.nonzero(p.labels > 0)[0].mean()


# -------------------------------------------------------------------- lesions


def _components(p: Phantom) -> list[tuple[slice, slice]]:
    lab, _ = ndimage.label(p.mask("lesion"), structure=EIGHT)
    return [sl for sl in ndimage.find_objects(lab)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [64, 256])
def test_boxes_are_tight_boxes_of_lesion_components(kind: str, size: int) -> None:
    for seed in SEEDS:
        p = make_phantom(size, seed, kind)
        lab, _ = ndimage.label(p.mask("lesion"), structure=EIGHT)
        expected = set()
        for k, (rows, cols) in enumerate(ndimage.find_objects(lab), start=1):
            if (lab == k).sum() >= 4:
                expected.add((cols.start, rows.start, cols.stop, rows.stop))
        got = {tuple(int(v) for v in box) for box in p.boxes}
        assert got == expected, (kind, size, seed)
        assert len(got) == len(p.boxes)
        for x1, y1, x2, y2 in p.boxes:
            assert 0 <= x1 < x2 <= size and 0 <= y1 < y2 <= size
            # exclusive edge: the last row/column of the box holds lesion pixels
            m = p.mask("lesion")
            assert m[int(y1) : int(y2), int(x2) - 1].any() and m[int(y2) - 1, int(x1) : int(x2)].any()


def test_n_lesions_controls_count() -> None:
    assert make_phantom(128, 3, n_lesions=0).boxes.shape == (0, 4)
    assert not make_phantom(128, 3, n_lesions=0).mask("lesion").any()
    assert len(make_phantom(256, 3, n_lesions=3).boxes) == 3
    assert len(make_phantom(256, 3, "chest", n_lesions=4).boxes) == 4


def test_default_lesion_counts() -> None:
    abd = {len(make_phantom(128, s).boxes) for s in range(12)}
    assert abd <= {1, 2, 3} and len(abd) > 1


def test_abdomen_lesions_inside_liver(phantoms: dict) -> None:
    for seed in SEEDS:
        p = phantoms[("abdomen", seed)]
        lesion = p.mask("lesion")
        ring = ndimage.binary_dilation(lesion, EIGHT) & ~lesion
        assert ring.any()
        assert (p.labels[ring] == TISSUES.index("liver")).all(), seed
        organ = p.mask("liver") | lesion
        for x1, y1, x2, y2 in p.boxes:
            assert organ[int((y1 + y2) // 2), int((x1 + x2) // 2)]


def test_chest_nodules_inside_lungs(phantoms: dict) -> None:
    for seed in SEEDS:
        p = phantoms[("chest", seed)]
        lesion = p.mask("lesion")
        ring = ndimage.binary_dilation(lesion, EIGHT) & ~lesion
        assert (p.labels[ring] == TISSUES.index("lung")).all(), seed


def test_lesion_sizes(phantoms: dict) -> None:
    for seed in SEEDS:
        abd, chest = phantoms[("abdomen", seed)], phantoms[("chest", seed)]
        for sl in _components(abd):
            extent = max(s.stop - s.start for s in sl) * abd.pixel_size_mm
            assert 9.0 <= extent <= 42.0, (seed, extent)
        for sl in _components(chest):
            extent = max(s.stop - s.start for s in sl) * chest.pixel_size_mm
            assert extent <= 10.0 + 2 * chest.pixel_size_mm, (seed, extent)


def test_liver_lesion_contrast() -> None:
    signs = []
    for seed in range(8):
        p = make_phantom(256, seed, n_lesions=2)
        lab, n = ndimage.label(p.mask("lesion"), structure=EIGHT)
        liver = p.mask("liver")
        for k in range(1, n + 1):
            comp = lab == k
            core = _interior(comp)
            ring = ndimage.binary_dilation(comp, EIGHT, iterations=4) & ~ndimage.binary_dilation(comp, EIGHT)
            ring &= _interior(liver)  # away from partial volume with vessels
            contrast = float(p.hu[core].mean() - p.hu[ring].mean())
            assert 10.0 <= abs(contrast) <= 60.0, (seed, k, contrast)
            signs.append(np.sign(contrast))
    assert -1 in signs  # hypodense lesions occur


# ------------------------------------------------------- resolution consistency


@pytest.mark.parametrize("kind", KINDS)
def test_same_anatomy_at_two_resolutions(kind: str) -> None:
    for seed in (0, 3):
        fine = make_phantom(256, seed, kind)
        coarse = make_phantom(128, seed, kind)
        agree = (fine.labels[::2, ::2] == coarse.labels).mean()
        assert agree >= 0.9, (seed, agree)
        fine_lesions = fine.mask("lesion").sum() * fine.pixel_size_mm**2
        coarse_lesions = coarse.mask("lesion").sum() * coarse.pixel_size_mm**2
        assert coarse_lesions == pytest.approx(fine_lesions, rel=0.35, abs=30.0)


def test_boxes_scale_with_resolution() -> None:
    fine, coarse = make_phantom(256, 2), make_phantom(128, 2)
    assert len(fine.boxes) == len(coarse.boxes)
    centres_f = np.sort((fine.boxes[:, 0] + fine.boxes[:, 2]) / 2 * fine.pixel_size_mm)
    centres_c = np.sort((coarse.boxes[:, 0] + coarse.boxes[:, 2]) / 2 * coarse.pixel_size_mm)
    np.testing.assert_allclose(centres_f, centres_c, atol=2 * coarse.pixel_size_mm)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(size=16, seed=0), "size"),
        (dict(size=64.5, seed=0), "size"),
        (dict(size=True, seed=0), "size"),
        (dict(size="64", seed=0), "size"),
        (dict(size=64, seed=0, kind="head"), "kind"),
        (dict(size=64, seed=-1), "seed"),
        (dict(size=64, seed=1.0), "seed"),
        (dict(size=64, seed=0, fov_mm=0.0), "fov_mm"),
        (dict(size=64, seed=0, fov_mm=float("nan")), "fov_mm"),
        (dict(size=64, seed=0, n_lesions=-1), "n_lesions"),
        (dict(size=64, seed=0, n_lesions=1000), "n_lesions"),
    ],
)
def test_bad_input(kwargs: dict, name: str) -> None:
    with pytest.raises(ParameterError, match=name):
        make_phantom(**kwargs)


def test_kind_error_lists_valid_kinds() -> None:
    with pytest.raises(ParameterError, match="abdomen.*chest.*head"):
        make_phantom(64, 0, "head")


def test_numpy_integers_accepted() -> None:
    p = make_phantom(np.int64(48), np.int32(2))
    assert p.hu.shape == (48, 48) and p.seed == 2 and type(p.seed) is int
