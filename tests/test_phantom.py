"""Tests of the procedural CT phantoms (ldct_nb.data.phantom)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ldct_nb.data.phantom import LESION_KINDS, TEXTURE, TISSUE_HU_RANGES, TISSUES, Phantom, make_phantom
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


ALL_LESION_KINDS = [(kind, lk) for kind, kinds in LESION_KINDS.items() for lk in kinds]


@pytest.mark.parametrize("kind, lesion_kind", ALL_LESION_KINDS)
@pytest.mark.parametrize("size", [64, 128, 256])
def test_boxes_and_lesion_labels_agree(kind: str, lesion_kind: str, size: int) -> None:
    """The box / label rule: every pixel labelled lesion belongs to a lesion with a box,
    every box is the tight box of its lesion, and every lesion is big enough to box
    (>= 4 pixels, box >= 2 x 2). Checked on the label map alone too: each 8-connected
    lesion component lies in exactly one box and each box holds a component."""
    for seed in SEEDS:
        p = make_phantom(size, seed, kind, lesion_kind=lesion_kind)
        lesion = p.mask("lesion")
        np.testing.assert_array_equal(p.lesion_map > 0, lesion)
        assert len(p.lesion_hosts) == len(p.boxes) == int(p.lesion_map.max())
        for k, (x1, y1, x2, y2) in enumerate(p.boxes.astype(int), start=1):
            rows, cols = np.nonzero(p.lesion_map == k)
            assert rows.size >= 4 and x2 - x1 >= 2 and y2 - y1 >= 2, (seed, k)
            assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == (x1, y1, x2, y2)
            assert 0 <= x1 < x2 <= size and 0 <= y1 < y2 <= size
        lab, n = ndimage.label(lesion, structure=EIGHT)
        owners = []
        for comp in range(1, n + 1):
            rows, cols = np.nonzero(lab == comp)
            inside = [b for b, (x1, y1, x2, y2) in enumerate(p.boxes)
                      if x1 <= cols.min() and cols.max() < x2 and y1 <= rows.min() and rows.max() < y2]
            assert len(inside) >= 1, (kind, lesion_kind, size, seed, comp)
            owners.append(int(p.lesion_map[rows[0], cols[0]]))
        assert set(owners) == set(range(1, len(p.boxes) + 1))


def test_lesions_too_small_to_box_leave_no_trace() -> None:
    """Lesions below the box rule are not drawn at all: with every texture off, the
    lung interior is perfectly flat at 64 px even where 512 px shows small nodules."""
    flat = {tissue: (1.0, 0.0) for tissue in TEXTURE}
    dropped = 0
    for seed in SEEDS:
        coarse = make_phantom(64, seed, "chest", lesion_kind="nodule", n_lesions=6, texture=flat)
        fine = make_phantom(512, seed, "chest", lesion_kind="nodule", n_lesions=6, texture=flat)
        dropped += len(fine.boxes) - len(coarse.boxes)
        lung = _interior(_interior(coarse.mask("lung")))
        assert float(np.ptp(coarse.hu[lung])) < 1e-3, seed
    assert dropped > 0  # the test saw lesions that only the fine grid can box


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
    """Metastases 10-40 mm, nodules 3-30 mm (LESION_KINDS), measured as the box extent."""
    nodule_sizes = []
    for seed in SEEDS:
        abd, chest = phantoms[("abdomen", seed)], phantoms[("chest", seed)]
        for sl in _components(abd):
            extent = max(s.stop - s.start for s in sl) * abd.pixel_size_mm
            assert 9.0 <= extent <= 42.0, (seed, extent)
        for sl in _components(chest):
            extent = max(s.stop - s.start for s in sl) * chest.pixel_size_mm
            assert extent <= 30.0 + 2 * chest.pixel_size_mm, (seed, extent)
            nodule_sizes.append(extent)
    assert min(nodule_sizes) < 10.0 < max(nodule_sizes)  # small and large nodules both occur


def test_abdominal_masses_size_and_contrast() -> None:
    """lesion_kind='mass': liver masses of 15-60 mm with |contrast| 10-40 HU (issue 10)."""
    extents, contrasts = [], []
    for seed in range(6):
        p = make_phantom(256, seed, "abdomen", lesion_kind="mass", texture={"liver": (4.0, 0.0), "lesion": (3.0, 0.0)})
        liver = p.mask("liver")
        for k in range(1, len(p.boxes) + 1):
            comp = p.lesion_map == k
            rows, cols = np.nonzero(comp)
            extents.append(max(np.ptp(rows), np.ptp(cols)) * p.pixel_size_mm + p.pixel_size_mm)
            ring = ndimage.binary_dilation(comp, EIGHT, iterations=4) & ~ndimage.binary_dilation(comp, EIGHT)
            ring &= _interior(liver)
            contrasts.append(float(p.hu[_interior(comp)].mean() - p.hu[ring].mean()))
    assert len(extents) >= 6
    assert all(13.0 <= e <= 62.0 for e in extents), extents
    assert all(8.0 <= abs(c) <= 42.0 for c in contrasts), contrasts


def test_emboli_are_filling_defects_in_enhanced_arteries() -> None:
    """lesion_kind='embolism': the clot (20-60 HU) sits in a pulmonary artery enhanced to
    160-330 HU; it is darker than the lumen around it, which it touches."""
    n = 0
    for seed in SEEDS:
        p = make_phantom(512, seed, "chest", lesion_kind="embolism", n_lesions=4)
        assert set(p.lesion_hosts) <= {"vessel"}
        vessel = p.mask("vessel")
        for k in range(1, len(p.boxes) + 1):
            clot = p.lesion_map == k
            ring = ndimage.binary_dilation(clot, EIGHT) & ~clot
            lumen = ring & vessel
            assert lumen.any() and not (p.labels[ring] == 0).any(), (seed, k)
            if lumen.sum() >= 3:
                assert np.median(p.hu[clot]) < np.median(p.hu[lumen]) - 60.0, (seed, k)
            n += 1
    assert n >= 5
    chest = make_phantom(256, 0, "chest")
    assert float(chest.hu[_interior(chest.mask("vessel"))].max()) > 200.0  # enhanced arteries exist


def test_nodules_are_solid_or_ground_glass() -> None:
    means = []
    for seed in range(12):
        p = make_phantom(256, seed, "chest", lesion_kind="nodule")
        for k in range(1, len(p.boxes) + 1):
            core = _interior(p.lesion_map == k)
            if core.sum() >= 3:
                means.append(float(p.hu[core].mean()))
    assert any(m > -150 for m in means) and any(-760 < m < -350 for m in means), means


def test_mixed_has_both_kinds() -> None:
    hosts = set()
    for seed in range(8):
        hosts |= set(make_phantom(256, seed, "chest", lesion_kind="mixed", n_lesions=4).lesion_hosts)
    assert hosts == {"vessel", "lung"}


def test_texture_parameters() -> None:
    """Amplitude 0 flattens a tissue; a longer correlation length raises the correlation
    of neighbouring pixels; the amplitude sets the standard deviation."""
    flat = make_phantom(256, 1, texture={"liver": (4.0, 0.0)})
    core = _interior(_interior(flat.mask("liver")))
    assert float(flat.hu[core].std()) < 0.5

    def lag1(p: Phantom) -> tuple[float, float]:
        core = _interior(_interior(p.mask("liver")))
        pairs = core[:, :-3] & core[:, 3:]
        return float(np.corrcoef(p.hu[:, :-3][pairs], p.hu[:, 3:][pairs])[0, 1]), float(p.hu[core].std())

    short, s_std = lag1(make_phantom(256, 1, texture={"liver": (1.5, 10.0)}))
    long, l_std = lag1(make_phantom(256, 1, texture={"liver": (8.0, 10.0)}))
    assert long > short + 0.2
    assert 6.0 < s_std < 14.0 and 6.0 < l_std < 14.0


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
        (dict(size=64, seed=0, lesion_kind="embolism"), "lesion_kind.*metastasis"),
        (dict(size=64, seed=0, kind="chest", lesion_kind="metastasis"), "lesion_kind.*embolism"),
        (dict(size=64, seed=0, lesion_kind=3), "lesion_kind"),
        (dict(size=64, seed=0, texture={"brain": (1.0, 1.0)}), "texture.*brain"),
        (dict(size=64, seed=0, texture={"liver": (0.0, 1.0)}), "texture"),
        (dict(size=64, seed=0, texture={"liver": (1.0, -1.0)}), "texture"),
        (dict(size=64, seed=0, texture={"liver": 4.0}), "texture"),
        (dict(size=64, seed=0, texture=[("liver", (1.0, 1.0))]), "texture"),
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
