"""Tests of ldct_nb.data.datasets: the HU window, paired augmentation and the
three datasets over the cache (whole slices, patches, detection slices)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ldct_nb.data.datasets import (
    DetectionSlices,
    HUWindow,
    PairedPatches,
    PairedSlices,
    detection_collate,
    paired_augment,
)
from ldct_nb.errors import ParameterError


def dihedral(a: np.ndarray) -> list[np.ndarray]:
    """The 8 images of ``a`` (... x H x W) under rot90^k and rot90^k followed by a flip."""
    out = []
    for k in range(4):
        r = np.rot90(a, k, axes=(-2, -1))
        out += [r, r[..., ::-1]]
    return out


def which_element(a: np.ndarray, transformed: np.ndarray) -> int:
    hits = [i for i, d in enumerate(dihedral(a)) if d.shape == transformed.shape and np.array_equal(d, transformed)]
    assert len(hits) == 1, "not a (unique) dihedral image"
    return hits[0]


def _volume(n=3, h=20, w=20, seed=0, lo=-1500.0, hi=3000.0):
    """Random HU slices, partly outside the [-1000, 2000] window, no symmetry."""
    return np.random.default_rng(seed).uniform(lo, hi, size=(n, h, w)).astype(np.float32)


# ----------------------------------------------------------------- HUWindow


def test_window_hand_values():
    w = HUWindow()
    np.testing.assert_array_equal(w.normalize(np.array([-1000.0, 500.0, 2000.0, -3000.0, 9000.0])),
                                  [0.0, 0.5, 1.0, 0.0, 1.0])
    assert w.width == 3000.0 and "[-1000, 2000]" in repr(w) and "clipped" in repr(w)
    assert HUWindow(-160, 240, clip=False).normalize(np.array([40.0]))[0] == pytest.approx(0.5)


@pytest.mark.parametrize("low,high", [(-1000.0, 2000.0), (-160.0, 240.0), (-1024.0, 3071.0)])
def test_window_round_trip(low, high):
    rng = np.random.default_rng(1)
    inside = np.concatenate([rng.uniform(low, high, 20000), np.arange(np.ceil(low), np.floor(high) + 1)])
    for w in (HUWindow(low, high), HUWindow(low, high, clip=False)):
        back = w.denormalize(w.normalize(inside))
        np.testing.assert_allclose(back, inside, rtol=0, atol=1e-12 * (high - low))
        hu32 = inside.astype(np.float32)  # what the cache holds: exact after rounding to float32
        np.testing.assert_array_equal(w.denormalize(w.normalize(hu32.astype(np.float64))).astype(np.float32), hu32)
        t = torch.from_numpy(inside)
        torch.testing.assert_close(w.denormalize(w.normalize(t)), t, rtol=0, atol=1e-12 * (high - low))
    outside = np.concatenate([rng.uniform(low - 5000, low, 1000), rng.uniform(high, high + 5000, 1000)])
    w = HUWindow(low, high, clip=False)
    np.testing.assert_allclose(w.denormalize(w.normalize(outside)), outside, rtol=0, atol=1e-11 * (high - low))
    clipped = HUWindow(low, high).normalize(outside)
    assert clipped.min() == 0.0 and clipped.max() == 1.0
    np.testing.assert_array_equal(HUWindow(low, high).denormalize(clipped), np.clip(outside, low, high))


@pytest.mark.parametrize("low,high", [(100, 100), (200, -200), ("a", 1), (float("nan"), 1.0), (None, 0)])
def test_window_refuses_bad_bounds(low, high):
    with pytest.raises(ParameterError, match="low < high") as err:
        HUWindow(low, high)
    assert f"low={low!r}" in str(err.value)


# ----------------------------------------------------------------- paired augmentation


def test_paired_augment_same_transform_for_all_arrays():
    a = np.random.default_rng(0).normal(size=(12, 12))  # no symmetry: the dihedral element is identifiable
    b = a * 2 + 1
    labels = (a > 0.3).astype(np.uint8)
    stack = np.stack([a, -a])  # a C x H x W array is transformed on its last two axes
    seen = set()
    for seed in range(200):
        oa, ob, ol, os_ = paired_augment([a, b, labels, stack], np.random.default_rng(seed))
        np.testing.assert_array_equal(ob, oa * 2 + 1)
        np.testing.assert_array_equal(ol, (oa > 0.3).astype(np.uint8))
        np.testing.assert_array_equal(os_, np.stack([oa, -oa]))
        assert all(o.flags.c_contiguous for o in (oa, ob, ol, os_))
        seen.add(which_element(a, oa))
    assert seen == set(range(8))


def test_paired_augment_non_square():
    a = np.arange(12.0).reshape(3, 4)
    shapes = {paired_augment([a], np.random.default_rng(s))[0].shape for s in range(50)}
    assert shapes == {(3, 4), (4, 3)}


# ----------------------------------------------------------------- PairedSlices


def test_paired_slices_values_and_shapes(make_cache):
    nd, ld = _volume(seed=0), _volume(seed=1)
    labels = (np.arange(3 * 20 * 20).reshape(3, 20, 20) % 7).astype(np.uint8)
    ds = PairedSlices(make_cache(nd, ld, labels=labels), with_labels=True)
    assert len(ds) == 3 and "3 slices" in repr(ds)
    w = HUWindow()
    for i in range(3):
        item = ds[i]
        assert item["index"] == i
        for key, hu in (("ldct", ld[i]), ("ndct", nd[i])):
            x = item[key]
            assert x.shape == (1, 20, 20) and x.dtype == torch.float32
            assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
            np.testing.assert_allclose(w.denormalize(x[0].double().numpy()), np.clip(hu, -1000, 2000), rtol=0, atol=1e-3)
        assert item["labels"].dtype == torch.int64
        np.testing.assert_array_equal(item["labels"].numpy(), labels[i])
    with pytest.raises(IndexError):
        ds[3]
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["ldct"].shape == (2, 1, 20, 20) and batch["labels"].shape == (2, 20, 20)


def test_paired_slices_augmentation_is_paired_and_deterministic(make_cache):
    nd, ld = _volume(seed=0), _volume(seed=1)
    labels = (nd > 500).astype(np.uint8)
    split = make_cache(nd, ld, labels=labels)
    ds = PairedSlices(split, augment=True, with_labels=True, seed=5)
    twin = PairedSlices(split, augment=True, with_labels=True, seed=5)
    w = HUWindow()
    elements = {}
    for epoch in range(6):
        ds.set_epoch(epoch)
        twin.set_epoch(epoch)
        for i in range(3):
            item, again = ds[i], twin[i]
            for key in ("ldct", "ndct", "labels"):
                assert torch.equal(item[key], again[key])  # same (seed, epoch, index): same draw
            e = which_element(w.normalize(nd[i]).astype(np.float32), item["ndct"][0].numpy())
            assert which_element(w.normalize(ld[i]).astype(np.float32), item["ldct"][0].numpy()) == e
            assert which_element(labels[i].astype(np.int64), item["labels"].numpy()) == e
            elements[epoch, i] = e
    for i in range(3):
        assert len({elements[epoch, i] for epoch in range(6)}) > 1  # the draw changes across epochs
    other = PairedSlices(split, augment=True, seed=6)
    assert any(not torch.equal(other[i]["ndct"], PairedSlices(split, augment=True, seed=5)[i]["ndct"])
               for i in range(3))


def test_paired_slices_without_labels(make_cache):
    split = make_cache(_volume())
    with pytest.raises(ParameterError, match="with_labels"):
        PairedSlices(split, with_labels=True)
    assert "labels" not in PairedSlices(split)[0]


# ----------------------------------------------------------------- PairedPatches


def test_patches_equal_the_cache_at_their_position(make_cache):
    nd, ld = _volume(n=2, h=24, w=30), _volume(n=2, h=24, w=30, seed=1)
    split = make_cache(nd, ld)
    ds = PairedPatches(split, patch_size=8, patches_per_slice=3, augment=False, max_air_fraction=1.0, seed=2)
    assert len(ds) == 6 and "8x8" in repr(ds)
    w = HUWindow()
    origins = set()
    for i in range(6):
        s, top, left = ds.position(i)
        assert s == i // 3 and 0 <= top <= 16 and 0 <= left <= 22
        item = ds[i]
        assert item["origin"] == (s, top, left) and item["ndct"].shape == (1, 8, 8)
        np.testing.assert_array_equal(item["ndct"][0].numpy(),
                                      w.normalize(nd[s, top:top + 8, left:left + 8]).astype(np.float32))
        np.testing.assert_array_equal(item["ldct"][0].numpy(),
                                      w.normalize(ld[s, top:top + 8, left:left + 8]).astype(np.float32))
        origins.add((top, left))
    assert len(origins) > 1
    assert [ds.position(i) for i in range(6)] == [ds.position(i) for i in range(6)]  # deterministic
    ds.set_epoch(1)
    moved = [ds.position(i) for i in range(6)]
    ds.set_epoch(0)
    assert moved != [ds.position(i) for i in range(6)]
    with pytest.raises(IndexError):
        ds[6]


def test_patches_augmentation_is_paired(make_cache):
    nd, ld = _volume(n=1, h=16, w=16), _volume(n=1, h=16, w=16, seed=1)
    ds = PairedPatches(make_cache(nd, ld), patch_size=10, patches_per_slice=40, augment=True, max_air_fraction=1.0)
    w = HUWindow()
    seen = set()
    for i in range(len(ds)):
        s, top, left = ds.position(i)
        item = ds[i]
        crop = (slice(top, top + 10), slice(left, left + 10))
        e = which_element(w.normalize(nd[s][crop]).astype(np.float32), item["ndct"][0].numpy())
        assert which_element(w.normalize(ld[s][crop]).astype(np.float32), item["ldct"][0].numpy()) == e
        seen.add(e)
    assert len(seen) >= 6


def _half_air(n=2, size=64):
    vol = np.full((n, size, size), 40.0, np.float32)
    vol[:, :, : size // 2] = -1000.0  # left half is air
    return vol


def test_background_rejection_bounds_air_fraction(make_cache):
    vol = _half_air()
    split = make_cache(vol)

    def air(ds, i):
        s, top, left = ds.position(i)
        return float((vol[s, top:top + 16, left:left + 16] < -850).mean())

    strict = PairedPatches(split, patch_size=16, patches_per_slice=50, max_air_fraction=0.25, max_tries=50)
    assert max(air(strict, i) for i in range(len(strict))) <= 0.25
    loose = PairedPatches(split, patch_size=16, patches_per_slice=50, max_air_fraction=1.0)
    assert max(air(loose, i) for i in range(len(loose))) > 0.25  # without rejection air patches do occur


def test_background_rejection_keeps_least_air_draw(make_cache):
    vol = np.full((1, 32, 32), -1000.0, np.float32)
    vol[0, 20:26, 4:12] = 50.0  # a small body: every 16 x 16 patch is mostly air
    ds = PairedPatches(make_cache(vol), patch_size=16, patches_per_slice=20, max_air_fraction=0.0, max_tries=7, seed=3)
    for i in range(len(ds)):
        rng = np.random.default_rng([3, 0, i])
        draws = [(int(rng.integers(17)), int(rng.integers(17))) for _ in range(7)]
        airs = [float((vol[0, t:t + 16, l:l + 16] < -850).mean()) for t, l in draws]
        assert ds.position(i) == (0, *draws[int(np.argmin(airs))])
        assert min(airs) > 0.0  # really no draw satisfied the limit


@pytest.mark.parametrize("kwargs,name", [
    (dict(patch_size=0), "patch_size"), (dict(patch_size=33), "patch_size"), (dict(patch_size=8.0), "patch_size"),
    (dict(patch_size=True), "patch_size"), (dict(patch_size=8, patches_per_slice=0), "patches_per_slice"),
    (dict(patch_size=8, max_air_fraction=1.5), "max_air_fraction"),
    (dict(patch_size=8, max_air_fraction=-0.1), "max_air_fraction"), (dict(patch_size=8, max_tries=0), "max_tries"),
])
def test_patches_bad_parameters(make_cache, kwargs, name):
    split = make_cache(_volume(n=1, h=32, w=40))
    with pytest.raises(ParameterError, match=name):
        PairedPatches(split, **kwargs)


# ----------------------------------------------------------------- DetectionSlices

H, W = 24, 32  # not square, so x / y mix-ups show


def _detection_cache(make_cache):
    boxes = [np.array([[3, 5, 10, 9], [20, 14, 31, 22]], np.float32), np.zeros((0, 4), np.float32),
             np.array([[0, 0, 4, 24]], np.float32)]
    nd = np.full((3, H, W), -1000.0, np.float32)
    for i, bxs in enumerate(boxes):
        for x1, y1, x2, y2 in bxs.astype(int):
            nd[i, y1:y2, x1:x2] = 500.0  # each box drawn as a bright rectangle (x = column, exclusive x2 / y2)
    return make_cache(nd, nd + 100.0, boxes=boxes), boxes


def _box_mask(bxs) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    for x1, y1, x2, y2 in np.asarray(bxs).astype(int):
        mask[y1:y2, x1:x2] = True
    return mask


def test_detection_items_and_hflip_moves_boxes_with_the_image(make_cache):
    split, boxes = _detection_cache(make_cache)
    plain = DetectionSlices(split)
    for i in range(3):
        image, target = plain[i]
        assert image.shape == (1, H, W) and image.dtype == torch.float32
        assert target["boxes"].dtype == torch.float32 and target["boxes"].shape == (len(boxes[i]), 4)
        assert target["labels"].dtype == torch.int64 and torch.equal(target["labels"], torch.ones(len(boxes[i]), dtype=torch.int64))
        assert target["image_id"] == i
        np.testing.assert_array_equal(target["boxes"].numpy(), boxes[i])
    flips = set()
    for seed in range(6):
        ds = DetectionSlices(split, hflip=True, seed=seed)
        for epoch in range(2):
            ds.set_epoch(epoch)
            for i in range(3):
                image, target = ds[i]
                bright = image[0].numpy() > 0.4
                np.testing.assert_array_equal(bright, _box_mask(target["boxes"].numpy()))  # boxes sit on the rectangles
                assert ((target["boxes"][:, 0] < target["boxes"][:, 2]).all())
                flipped = not np.array_equal(target["boxes"].numpy(), boxes[i])
                if len(boxes[i]):
                    flips.add(flipped)
    assert flips == {True, False}
    ldct_image, _ = DetectionSlices(split, source="ldct")[0]
    np.testing.assert_allclose(ldct_image.numpy(), plain[0][0].numpy() + 100 / 3000, atol=1e-6)


def test_detection_flip_changes_across_epochs(make_cache):
    split, _ = _detection_cache(make_cache)
    ds = DetectionSlices(split, hflip=True, seed=0)
    draws = []
    for epoch in range(10):
        ds.set_epoch(epoch)
        draws.append(ds[0][1]["boxes"][0, 0].item())
    assert len(set(draws)) == 2


def test_detection_labels_are_the_annotated_classes(make_cache):
    # Formerly every box became class 1 whatever the annotation CSV said.
    nd = np.full((2, H, W), -1000.0)
    split = make_cache(nd, boxes=[[[1, 1, 5, 5], [6, 6, 9, 9]], [[2, 2, 4, 4]]], box_labels=[[2, 1], [3]])
    assert [t["labels"].tolist() for _, t in DetectionSlices(split)] == [[2, 1], [3]]


def test_detection_collate_with_dataloader(make_cache):
    split, boxes = _detection_cache(make_cache)
    loader = DataLoader(DetectionSlices(split), batch_size=3, collate_fn=detection_collate)
    images, targets = next(iter(loader))
    assert isinstance(images, tuple) and len(images) == 3 and images[0].shape == (1, H, W)
    assert [len(t["boxes"]) for t in targets] == [2, 0, 1]
    assert targets[1]["boxes"].shape == (0, 4)


def test_detection_bad_source(make_cache):
    split, _ = _detection_cache(make_cache)
    with pytest.raises(ParameterError, match="source"):
        DetectionSlices(split, source="phantom")
    with pytest.raises(IndexError):
        DetectionSlices(split)[3]


def test_datasets_default_to_the_window_the_cache_was_built_with(tmp_path):
    # Formerly ASCON's [-1000, 2000] HU was used whatever the manifest's hu_window said.
    from ldct_nb.data.cache import SplitWriter, open_split

    nd = np.full((1, 8, 8), 976.0, np.float32)
    with SplitWriter(tmp_path, "train", {"dataset": "t", "hu_window": [-1024.0, 2976.0]}) as w:
        w.array("ndct", nd.shape, np.float32)[:] = nd
        w.array("ldct", nd.shape, np.float32)[:] = nd
        w.add_slice(np.zeros((0, 4)), id="s0", patient="p")
    split = open_split(tmp_path, "train")
    item = PairedSlices(split)[0]
    np.testing.assert_allclose(item["ndct"].numpy(), 0.5)  # (976 + 1024) / (2976 + 1024) by hand
    assert PairedSlices(split, window=HUWindow())[0]["ndct"][0, 0, 0].item() == pytest.approx(1976 / 3000)
    with pytest.raises(ParameterError, match="window must be an HUWindow"):
        PairedSlices(split, window=(-1000, 2000))
    for bad in (-1, 1.5, "0"):
        with pytest.raises(ParameterError, match="seed must be an int >= 0"):
            PairedSlices(split, seed=bad)
