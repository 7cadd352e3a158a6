"""Tests of ASCON's losses (ldct_nb.losses): SSIM, patch-wise, pixel-wise and total loss."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from skimage.metrics import structural_similarity

from ldct_nb.data.datasets import HUWindow
from ldct_nb.data.phantom import make_phantom
from ldct_nb.data.simulate import simulate_pair
from ldct_nb.errors import ParameterError
from ldct_nb.losses import (
    ABLATIONS,
    AsconLoss,
    ascon_loss,
    background_filter,
    info_nce,
    normalized_mse,
    select_hard_negatives,
    select_positives,
    ssim,
)
from ldct_nb.losses.patch_contrast import gather_neighbours, sample_positions, window_offsets
from ldct_nb.losses.pixel_contrast import candidate_offsets
from ldct_nb.losses.ssim import OFFICIAL_FORM
from ldct_nb.models.mac_net import mac_net


@pytest.fixture(scope="module")
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    """A 64-pixel abdominal phantom: (ndct, ldct) as (1, 1, 64, 64) on the [0, 1] scale."""
    ph = make_phantom(64, 3)
    ndct, ldct = simulate_pair(ph.hu, n0_full=1e6, dose_fraction=0.25, seed=3)
    w = HUWindow()
    return (torch.from_numpy(w.normalize(ndct))[None, None].float(), torch.from_numpy(w.normalize(ldct))[None, None].float())


def _unravel(index: int, width: int) -> tuple[int, int]:
    return index // width, index % width


# ------------------------------------------------------------------ SSIM


@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_matches_scikit_image(pair, seed) -> None:
    rng = np.random.default_rng(seed)
    x = pair[0][0, 0].numpy().astype(np.float64)
    for y in (pair[1][0, 0].numpy().astype(np.float64), np.clip(x + rng.normal(0, 0.03, x.shape), 0, 1), rng.random(x.shape)):
        ref = structural_similarity(x, y, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        ours = float(ssim(torch.from_numpy(x)[None, None], torch.from_numpy(y)[None, None], data_range=1.0))
        # far below the 1e-3 asked for: a 1e-3 tolerance would let sample covariances (x 121/120) pass
        assert abs(ours - ref) < 1e-6, (ours, ref)
        ours32 = float(ssim(torch.from_numpy(x).float()[None, None], torch.from_numpy(y).float()[None, None]))
        assert abs(ours32 - ref) < 1e-5, (ours32, ref)


def test_ssim_official_form_reproduces_the_official_code() -> None:
    """Golden figures from the official hao1635/ASCON util.compute_ssim (kornia filter2d, reflect
    padding, map clamped to [0, 1]), run once outside the project on a fixed pair of 3 images, the
    second anti-correlated (its clamped SSIM is 0). kornia builds its kernel in float32, hence 1e-7."""
    g = load_file(Path(__file__).parent / "data" / "ascon_official_golden.safetensors")
    a, b = g["ssim.a"], g["ssim.b"]
    ours = ssim(a, b, **OFFICIAL_FORM)
    assert abs(float(ours) - float(g["ssim.official_mean"])) < 1e-7
    torch.testing.assert_close(ssim(a, b, reduction="none", **OFFICIAL_FORM), g["ssim.official_per_image"], atol=1e-7, rtol=0)
    # the scikit-image form ('valid', no clamp) is a different number on the same images
    assert abs(float(ssim(a, b)) - float(g["ssim.official_mean"])) > 0.1
    assert abs(float(ssim(a[:1], b[:1])) - float(ssim(a[:1], b[:1], **OFFICIAL_FORM))) > 1e-4
    with pytest.raises(ParameterError, match="padding must be one of"):
        ssim(a, b, padding="zeros")
    with pytest.raises(ParameterError, match="clamp must be True or False"):
        ssim(a, b, clamp="yes")


def test_ssim_identity_and_batch() -> None:
    x = torch.rand(3, 1, 24, 24)
    torch.testing.assert_close(ssim(x, x), torch.tensor(1.0))
    y = torch.rand(3, 1, 24, 24)
    per = ssim(x, y, reduction="none")
    assert per.shape == (3,) and torch.all(per < 1)
    with pytest.raises(ParameterError, match="data_range"):
        ssim(x, y, data_range=0)
    with pytest.raises(ParameterError, match="win_size"):
        ssim(x[..., :8, :8], y[..., :8, :8])


# ------------------------------------------------------------------ sampling


def test_sample_positions_inside_mask_distinct_and_reproducible() -> None:
    mask = torch.zeros(2, 10, 10, dtype=torch.bool)
    mask[0, 2:5, 3:7] = True  # 12 allowed pixels
    mask[1, 0, :3] = True  # 3 allowed pixels
    idx1, ok1 = sample_positions(mask, 5, generator=torch.Generator().manual_seed(7))
    idx2, ok2 = sample_positions(mask, 5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(idx1, idx2) and torch.equal(ok1, ok2)
    assert ok1[0].all() and ok1[1].sum() == 3
    flat = mask.reshape(2, -1)
    for b in range(2):
        chosen = idx1[b][ok1[b]]
        assert flat[b, chosen].all()
        assert len(set(chosen.tolist())) == len(chosen)


def test_neighbours_never_wrap() -> None:
    h, w = 5, 6
    index = torch.tensor([[0, w - 1, (h - 1) * w, h * w - 1, 2 * w + 3]])
    neigh, inside = gather_neighbours(index, window_offsets(1), h, w)
    assert inside.sum(-1).tolist() == [[3, 3, 3, 3, 8]]
    for a, row, flags in zip(index[0].tolist(), neigh[0].tolist(), inside[0].tolist()):
        ay, ax = _unravel(a, w)
        for j, f in zip(row, flags):
            if f:
                jy, jx = _unravel(j, w)
                assert max(abs(jy - ay), abs(jx - ax)) == 1


# ------------------------------------------------------------------ patch-wise module


def test_top4_positives_equal_brute_force() -> None:
    torch.manual_seed(0)
    feats = torch.randn(2, 16, 6, 7)
    h, w = 6, 7
    anchors = torch.tensor([[0, 6, 20, 41, 24], [35, 10, 3, 17, 41]])
    pos, valid, sim = select_positives(feats, anchors, k=4)
    for b in range(2):
        for i, a in enumerate(anchors[b].tolist()):
            ay, ax = _unravel(a, w)
            fa = feats[b, :, ay, ax]
            scored = []
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    y, x = ay + dy, ax + dx
                    if (dy, dx) != (0, 0) and 0 <= y < h and 0 <= x < w:
                        s = torch.nn.functional.cosine_similarity(fa, feats[b, :, y, x], dim=0)
                        scored.append((float(s), y * w + x))
            scored.sort(reverse=True)
            expected = [j for _, j in scored[:4]]
            got = pos[b, i][valid[b, i]].tolist()
            assert got == expected
            np.testing.assert_allclose(sim[b, i][valid[b, i]].numpy(), [s for s, _ in scored[:4]], rtol=1e-5)
            if len(scored) < 4:  # a corner: 3 neighbours, the 4th slot is invalid
                assert int(valid[b, i].sum()) == len(scored)


def test_top4_positives_found_where_constructed() -> None:
    """Anchor (2, 2) on a 5 x 5 grid: make 4 chosen neighbours parallel to it."""
    feats = torch.randn(1, 8, 5, 5, generator=torch.Generator().manual_seed(1))
    a = feats[0, :, 2, 2]
    planted = [(1, 1), (1, 3), (3, 2), (2, 1)]
    for k, (y, x) in enumerate(planted):
        feats[0, :, y, x] = a * (1 + k) + 1e-3 * torch.randn(8)
    pos, valid, _ = select_positives(feats, torch.tensor([[12]]), k=4)
    assert valid.all()
    assert set(pos[0, 0].tolist()) == {y * 5 + x for y, x in planted}


def test_normalized_mse_range_and_zero_for_aligned() -> None:
    torch.manual_seed(0)
    p, z = torch.randn(100, 32), torch.randn(100, 32)
    v = normalized_mse(p, z)
    assert torch.all(v >= 0) and torch.all(v <= 4)
    torch.testing.assert_close(normalized_mse(p, 3.0 * p), torch.zeros(100), atol=1e-6, rtol=0)
    torch.testing.assert_close(normalized_mse(p, -p), torch.full((100,), 4.0))
    torch.testing.assert_close(v, ((torch.nn.functional.normalize(p, dim=1) - torch.nn.functional.normalize(z, dim=1)) ** 2).sum(1))


# ------------------------------------------------------------------ pixel-wise module


def test_candidate_offsets_both_readings() -> None:
    cheb = candidate_offsets(7, "chebyshev")
    assert len(cheb) == 48 and cheb.abs().max() == 3
    eucl = candidate_offsets(7, "euclidean")
    d = eucl.float().norm(dim=1)
    assert torch.all((d > 0) & (d < 7)) and len(eucl) == 144
    with pytest.raises(ParameterError, match="distance"):
        candidate_offsets(7, "manhattan")


@pytest.mark.parametrize("distance", ["chebyshev", "euclidean"])
def test_hard_negatives_within_radius_no_wrap_and_most_similar(distance) -> None:
    torch.manual_seed(0)
    h, w = 12, 11
    feats = torch.randn(1, 8, h, w)
    queries = torch.tensor([[0, w - 1, h * w - 1, 5 * w + 5, 1 * w + 9]])
    neg, valid, sim, cand, inside = select_hard_negatives(feats, queries, n_negatives=10, m=7, distance=distance)
    for i, q in enumerate(queries[0].tolist()):
        qy, qx = _unravel(q, w)
        fq = feats[0, :, qy, qx]
        scored = []
        for y in range(h):
            for x in range(w):
                dy, dx = y - qy, x - qx
                near = max(abs(dy), abs(dx)) <= 3 if distance == "chebyshev" else 0 < math.hypot(dy, dx) < 7
                if near and (dy, dx) != (0, 0):
                    scored.append((float(torch.nn.functional.cosine_similarity(fq, feats[0, :, y, x], dim=0)), y * w + x))
        scored.sort(reverse=True)
        chosen = neg[0, i][valid[0, i]].tolist()
        assert chosen == [j for _, j in scored[:10]]
        for j in chosen:  # inside the image and the radius: never wrapped
            jy, jx = _unravel(j, w)
            if distance == "chebyshev":
                assert max(abs(jy - qy), abs(jx - qx)) <= 3
            else:
                assert 0 < math.hypot(jy - qy, jx - qx) < 7
        assert int(inside[0, i].sum()) == len(scored)


def test_corner_query_has_fewer_negatives_never_wrapped() -> None:
    feats = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    neg, valid, sim, _, _ = select_hard_negatives(feats, torch.tensor([[0]]), n_negatives=24, m=7)
    assert int(valid.sum()) == 15  # the 4 x 4 corner of the window minus the query
    assert torch.isinf(sim[~valid]).all()
    for j in neg[valid].tolist():
        assert j // 16 <= 3 and j % 16 <= 3


def test_info_nce_equals_hand_computed_value() -> None:
    q = torch.tensor([[1.0, 0.0]])
    p = torch.tensor([[0.6, 0.8]])
    n = torch.tensor([[[0.0, 1.0], [-1.0, 0.0]]])
    tau = 0.5
    # logits: q.p = 0.6, q.n1 = 0, q.n2 = -1, divided by tau
    expected = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(0.0) + math.exp(-2.0)))
    torch.testing.assert_close(info_nce(q, p, n, tau=tau), torch.tensor([expected]))
    # an invalid negative drops out of the denominator
    only_first = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(0.0)))
    got = info_nce(q, p, n, tau=tau, negative_valid=torch.tensor([[True, False]]))
    torch.testing.assert_close(got, torch.tensor([only_first]))
    with pytest.raises(ParameterError, match="tau"):
        info_nce(q, p, n, tau=0)


# ------------------------------------------------------------------ background filter


def test_background_filter_excludes_air(pair) -> None:
    ndct = pair[0]
    body = background_filter(ndct, 0.05)
    hu = HUWindow().denormalize(ndct[0, 0])
    assert not body[0][hu < -900].any()  # air (about -1000 HU) is out
    assert body[0][hu > -500].all()  # tissue is in
    torch.manual_seed(0)
    loss = ascon_loss(mac_net=mac_net(0.125), n_anchors=8, n_queries=64)
    out = loss.terms(ndct, ndct, ("global", "local"), generator=torch.Generator().manual_seed(0))
    q = out.pixel.queries[out.pixel.query_valid]
    assert body.reshape(-1)[q].all()
    a = out.patch.anchors[out.patch.anchor_valid]
    cells = torch.nn.functional.avg_pool2d(body[None].float(), 16).reshape(-1)
    assert torch.all(cells[a] >= 0.5)
    assert background_filter(ndct, None).all()


# ------------------------------------------------------------------ total loss


def test_presets_and_ablations() -> None:
    net = mac_net(0.125)
    paper = ascon_loss("paper", mac_net=net)
    assert paper.weights == {"mse": 10.0, "ssim": 10.0, "perceptual": 0.0, "global": 1.0, "local": 1.0}
    assert (paper.n_anchors, paper.n_queries, paper.n_negatives, paper.background_threshold) == (32, 512, 24, 0.05)
    off = ascon_loss("official", sampling="mayo2020", mac_net=net)
    assert off.weights["mse"] == 100 and off.weights["ssim"] == 10
    assert math.isclose(off.weights["global"], 0.1 * 0.5) and math.isclose(off.weights["local"], 0.1 * 0.5)
    assert off.mac_weights == {"global": 0.5, "local": 0.5} and off.tau == 1.0 and off.background_threshold is None
    assert (off.n_anchors, off.n_queries, off.n_negatives) == (16, 256, 24)
    assert set(ABLATIONS) >= {"mse", "mse+perceptual", "mse+ssim", "mse+ssim+global", "mse+ssim+local", "full"}
    only_mse = ascon_loss(ablation="mse")  # no MAC-Net needed
    assert [k for k, v in only_mse.weights.items() if v > 0] == ["mse"]
    local = ascon_loss(ablation="mse+ssim+local", mac_net=net)
    assert [k for k, v in local.weights.items() if v > 0] == ["mse", "ssim", "local"]


def test_perceptual_term_needs_a_feature_network(pair) -> None:
    with pytest.raises(ParameterError, match="perceptual_net"):
        ascon_loss(ablation="mse+perceptual")
    features = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU())
    loss = ascon_loss(ablation="mse+perceptual", perceptual_net=features)
    assert loss.weights["perceptual"] == loss.weights["mse"] == 10.0
    ndct, ldct = pair
    x = ldct.clone().requires_grad_(True)
    out = loss(x, ndct)
    assert set(out.terms) == {"mse", "perceptual"} and float(out.terms["perceptual"].detach()) > 0
    out.total.backward()
    assert float(x.grad.abs().sum()) > 0 and all(p.grad is None for p in features.parameters())


def test_missing_mac_net_and_bad_keywords() -> None:
    with pytest.raises(ParameterError, match="mac_net"):
        ascon_loss("paper")
    with pytest.raises(ParameterError, match="preset"):
        ascon_loss("fancy", mac_net=mac_net(0.125))
    with pytest.raises(ParameterError, match="sampling"):
        ascon_loss(sampling="mayo2017", mac_net=mac_net(0.125))
    with pytest.raises(ParameterError, match="mse_weight"):
        AsconLoss(mac_net(0.125), mse_weight=-1)
    with pytest.raises(ParameterError, match="negative_distance"):
        AsconLoss(mac_net(0.125), negative_distance="l1")


def test_pixel_losses_order_and_gradients_reach_the_denoised_image(pair) -> None:
    ndct, ldct = pair
    torch.manual_seed(0)
    loss = ascon_loss(mac_net=mac_net(0.125), n_anchors=8, n_queries=128)
    half = 0.5 * (ldct + ndct)
    vals = {name: loss.terms(img, ndct, ("mse", "ssim"), generator=torch.Generator().manual_seed(0)).as_dict()
            for name, img in (("ndct", ndct), ("half", half), ("ldct", ldct))}
    for term in ("mse", "ssim"):
        assert vals["ndct"][term] == pytest.approx(0.0, abs=1e-6)
        assert vals["ndct"][term] < vals["half"][term] < vals["ldct"][term]
    # each term on its own sends a gradient to the denoised image
    for term in ("mse", "ssim", "global", "local"):
        x = half.clone().requires_grad_(True)
        out = loss.terms(x, ndct, (term,), generator=torch.Generator().manual_seed(0))
        out.terms[term].backward()
        assert x.grad is not None and float(x.grad.abs().sum()) > 0, term
    x = half.clone().requires_grad_(True)
    loss.denoiser_loss(x, ndct, generator=torch.Generator().manual_seed(0)).total.backward()
    assert float(x.grad.abs().sum()) > 0


def test_same_generator_same_samples(pair) -> None:
    ndct, ldct = pair
    loss = ascon_loss(mac_net=mac_net(0.125), n_anchors=8, n_queries=64)
    a = loss.terms(ldct, ndct, ("global", "local"), generator=torch.Generator().manual_seed(5))
    b = loss.terms(ldct, ndct, ("global", "local"), generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.pixel.queries, b.pixel.queries) and torch.equal(a.patch.anchors, b.patch.anchors)


def test_sample_descriptions_for_figures(pair) -> None:
    ndct, ldct = pair
    loss = ascon_loss(mac_net=mac_net(0.125), n_anchors=8, n_queries=64)
    out = loss.terms(ldct, ndct, ("global", "local"), generator=torch.Generator().manual_seed(1))
    d = out.patch.describe(0, 0)
    ay, ax = d["anchor"]
    assert len(d["positives"]) == 4 and set(d["positives"]) <= set(d["neighbours"])
    assert all(max(abs(y - ay), abs(x - ax)) == 1 for y, x in d["neighbours"])
    assert d["similarity"] == sorted(d["similarity"], reverse=True)
    p = out.pixel.describe(0, 0)
    qy, qx = p["query"]
    assert len(p["negatives"]) == 24 and set(p["negatives"]) <= set(p["candidates"])
    assert all(max(abs(y - qy), abs(x - qx)) <= 3 for y, x in p["candidates"])


def test_gradient_maps_add_up_to_the_total(pair) -> None:
    from ldct_nb.losses.ascon_loss import gradient_maps

    ndct, ldct = pair
    torch.manual_seed(0)
    loss = ascon_loss(mac_net=mac_net(0.125), n_anchors=8, n_queries=64)
    maps = gradient_maps(loss, 0.5 * (ldct + ndct), ndct, seed=0)
    assert set(maps) == {"mse", "ssim", "global", "local", "total"}
    for name, g in maps.items():
        assert g.shape == (1, 64, 64) and float(g.sum()) > 0, name
    # |sum of term gradients| <= sum of |term gradients|, equality of the signed sum checked via the triangle bound
    assert torch.all(maps["total"] <= sum(maps[n] for n in ("mse", "ssim", "global", "local")) + 1e-6)
    assert all(p.grad is None for p in loss.mac_net.parameters())


def test_each_module_draws_the_same_samples_whichever_terms_are_computed(pair) -> None:
    ndct, ldct = pair
    torch.manual_seed(0)
    loss = ascon_loss(mac_net=mac_net(0.125), n_anchors=8, n_queries=64)
    names = ("mse", "ssim", "global", "local")

    def grad_of(terms):
        x = ldct.clone().requires_grad_(True)
        out = loss.terms(x, ndct, terms, generator=torch.Generator().manual_seed(4))
        (g,) = torch.autograd.grad(out.total, x)
        return g

    total = grad_of(names)
    parts = sum(grad_of((n,)) for n in names)
    torch.testing.assert_close(total, parts, rtol=1e-4, atol=1e-4 * float(total.abs().max()))


# ------------------------------------------------------------------ review additions: the modules end to end


class _Normalize(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(x, dim=-1)


def test_patch_loss_equals_hand_computed_with_positives_chosen_on_the_target() -> None:
    """Eqs. (2)-(4) by hand: positives from the TARGET features reused online, GAP of the
    anchor and its 4 positives on each branch, online projector then predictor, target projector."""
    from ldct_nb.losses import patch_noncontrastive_loss

    torch.manual_seed(0)
    h, w, c = 4, 5, 6
    target = torch.randn(1, c, h, w)
    online = torch.randn(1, c, h, w)
    proj_on, pred, proj_tg = torch.nn.Linear(c, 3), torch.nn.Linear(3, 3), torch.nn.Linear(c, 3)
    loss, sample = patch_noncontrastive_loss(
        online, target, online_projector=proj_on, predictor=pred, target_projector=proj_tg,
        n_anchors=6, generator=torch.Generator().manual_seed(3),
    )
    pos_t, valid_t, _ = select_positives(target, sample.anchors)
    assert torch.equal(sample.positives, pos_t)
    pos_o, _, _ = select_positives(online, sample.anchors)
    assert not torch.equal(pos_o, pos_t)  # the test can tell which branch chose them

    def vec(f, j):
        return f[0, :, j // w, j % w]

    per = []
    for i, a in enumerate(sample.anchors[0].tolist()):
        chosen = pos_t[0, i][valid_t[0, i]].tolist()
        g_on = torch.stack([vec(online, a)] + [vec(online, j) for j in chosen]).mean(0)
        g_tg = torch.stack([vec(target, a)] + [vec(target, j) for j in chosen]).mean(0)
        p, z = pred(proj_on(g_on)), proj_tg(g_tg)
        per.append(2 - 2 * torch.nn.functional.cosine_similarity(p, z, dim=0))
    torch.testing.assert_close(loss, torch.stack(per).mean())


def test_pixel_loss_equals_hand_computed_with_negatives_chosen_on_the_target() -> None:
    """Eq. (5) by hand: query online, positive target at the same pixel, the N most similar
    TARGET neighbours as negatives (no wrap), local MLP = L2 normalisation, tau 0.5."""
    from ldct_nb.losses import pixel_contrastive_loss

    torch.manual_seed(1)
    h, w, c, n_neg, tau = 6, 6, 3, 5, 0.5
    target = torch.randn(1, c, h, w)
    online = torch.randn(1, c, h, w)
    loss, sample = pixel_contrastive_loss(
        online, target, local_mlp=_Normalize(), n_queries=6, n_negatives=n_neg, m=3, tau=tau,
        generator=torch.Generator().manual_seed(2),
    )
    neg_o = select_hard_negatives(online, sample.queries, n_negatives=n_neg, m=3)[0]
    assert not torch.equal(neg_o, sample.negatives)  # the test can tell which branch chose them
    unit = lambda v: v / v.norm()  # noqa: E731
    per = []
    for q in sample.queries[0].tolist():
        qy, qx = divmod(q, w)
        cands = [(y, x) for y in range(qy - 1, qy + 2) for x in range(qx - 1, qx + 2)
                 if (y, x) != (qy, qx) and 0 <= y < h and 0 <= x < w]
        sims = sorted(((float(torch.nn.functional.cosine_similarity(target[0, :, qy, qx], target[0, :, y, x], dim=0)), y, x)
                       for y, x in cands), reverse=True)[:n_neg]
        vq, vp = unit(online[0, :, qy, qx]), unit(target[0, :, qy, qx])
        logits = [float(vq @ vp) / tau] + [float(vq @ unit(target[0, :, y, x])) / tau for _, y, x in sims]
        per.append(-logits[0] + math.log(sum(math.exp(v) for v in logits)))
    assert float(loss) == pytest.approx(sum(per) / len(per), rel=1e-5)


@pytest.mark.parametrize("local_target", ["online", "ema"])
def test_local_mlp_target_side_by_preset(pair, local_target) -> None:
    """Eq. (5) transcribed with plain tensors: v = normalize(W2 relu(W1 f + b1) + b2). The query
    always goes through the online local MLP; positive and negatives through the online one
    (paper: one MLP) or its EMA copy under no_grad (official: mlp2 of netProjection_target)."""
    ndct, ldct = pair
    torch.manual_seed(4)
    net = mac_net(0.125, local_hidden=16, local_dim=8).train()
    with torch.no_grad():  # make the EMA copy differ from the online MLP
        for p in net.target_local_mlp.parameters():
            p.add_(0.3 * torch.randn_like(p))
    loss = ascon_loss("paper", mac_net=net, n_anchors=4, n_queries=16, tau=0.5, local_target=local_target,
                      background_threshold=None)
    gen = torch.Generator().manual_seed(5)
    out = loss.mac_loss(ldct, ndct, generator=gen)
    sample = out.pixel
    with torch.no_grad():
        f_on, f_tg = net.online(ldct)[1], net.target(ndct)[1]

    def mlp(f, module):
        l1, l2 = module.net[0], module.net[2]
        z = torch.relu(f @ l1.weight.T + l1.bias) @ l2.weight.T + l2.bias
        return z / z.norm(dim=-1, keepdim=True)

    side = net.local_mlp if local_target == "online" else net.target_local_mlp
    flat_on, flat_tg = f_on[0].flatten(1).T, f_tg[0].flatten(1).T  # (HW, C)
    q = mlp(flat_on[sample.queries[0]], net.local_mlp)
    pos = mlp(flat_tg[sample.queries[0]], side)
    neg = mlp(flat_tg[sample.negatives[0]], side)  # (n, N, K)
    logits = torch.cat([(q * pos).sum(-1, keepdim=True), torch.einsum("nk,nmk->nm", q, neg)], 1) / 0.5
    expected = (torch.logsumexp(logits, 1) - logits[:, 0]).mean()
    assert out.terms["local"].item() == pytest.approx(expected.item(), rel=1e-5)
    out.total.backward()
    assert all(p.grad is None for p in net.target_local_mlp.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.local_mlp.parameters())
    with pytest.raises(ParameterError, match="local_target must be one of"):
        ascon_loss(mac_net=net, local_target="target")


def test_mac_loss_detaches_the_denoised_image(pair) -> None:
    ndct, ldct = pair
    loss = ascon_loss(mac_net=mac_net(0.125), n_anchors=8, n_queries=64)
    x = ldct.clone().requires_grad_(True)
    out = loss.mac_loss(x, ndct, generator=torch.Generator().manual_seed(0))
    assert out.total.requires_grad  # it trains MAC-Net ...
    out.total.backward()
    assert x.grad is None  # ... and never the denoiser


def test_same_seed_same_loss_values_other_seed_other_samples(pair) -> None:
    ndct, ldct = pair
    torch.manual_seed(0)
    loss = ascon_loss(mac_net=mac_net(0.125), n_anchors=8, n_queries=64)
    run = lambda fn, s: fn(ldct, ndct, generator=torch.Generator().manual_seed(s))  # noqa: E731
    assert run(loss.denoiser_loss, 5).as_dict() == run(loss.denoiser_loss, 5).as_dict()
    assert run(loss.mac_loss, 5).as_dict() == run(loss.mac_loss, 5).as_dict()
    assert not torch.equal(run(loss.denoiser_loss, 5).pixel.queries, run(loss.denoiser_loss, 6).pixel.queries)


@pytest.mark.parametrize(
    "ablation, active",
    [("mse", ["mse"]), ("mse+perceptual", ["mse", "perceptual"]), ("mse+ssim", ["mse", "ssim"]),
     ("mse+ssim+global", ["mse", "ssim", "global"]), ("mse+ssim+local", ["mse", "ssim", "local"]),
     ("full", ["mse", "ssim", "global", "local"])],
)
def test_table2_rows(pair, ablation, active) -> None:
    ndct, ldct = pair
    features = torch.nn.Conv2d(1, 2, 3, padding=1)
    loss = ascon_loss(ablation=ablation, mac_net=mac_net(0.125), perceptual_net=features, n_anchors=4, n_queries=16)
    assert [k for k, v in loss.weights.items() if v > 0] == active
    out = loss(ldct, ndct, generator=torch.Generator().manual_seed(0))
    assert list(out.terms) == active
    assert float(out.total) == pytest.approx(sum(loss.weights[k] * float(v) for k, v in out.terms.items()), rel=1e-6)


def test_bad_input_gives_clear_errors(pair) -> None:
    ndct, _ = pair
    net = mac_net(0.125)
    with pytest.raises(ParameterError, match="ablation"):
        ascon_loss(ablation="mse+global", mac_net=net)
    with pytest.raises(ParameterError, match="n_anchor"):
        ascon_loss(mac_net=net, n_anchor=8)  # a typo: not a TypeError
    with pytest.raises(ParameterError, match="n_positives"):
        ascon_loss(mac_net=net, n_positives=9)
    with pytest.raises(ParameterError, match="n_negatives"):
        ascon_loss(mac_net=net, n_negatives=49)
    with pytest.raises(ParameterError, match="negative_window"):
        ascon_loss(mac_net=net, negative_window=6)
    loss = ascon_loss(mac_net=net, n_anchors=4, n_queries=16)
    with pytest.raises(ParameterError, match="denoised size must be divisible by 16"):
        loss(ndct[..., :48, :40], ndct[..., :48, :40])
    with pytest.raises(ParameterError, match="differ in shape"):
        loss(ndct, ndct[..., :32, :32])
    with pytest.raises(ParameterError, match="ndct"):
        loss(ndct, ndct[:, 0])
    with pytest.raises(ParameterError, match="denoised"):
        loss(ndct[0], ndct[0])
    from ldct_nb.losses import patch_noncontrastive_loss, pixel_contrastive_loss

    f = torch.randn(2, 4, 4, 4)
    heads = dict(online_projector=torch.nn.Identity(), predictor=torch.nn.Identity(), target_projector=torch.nn.Identity())
    with pytest.raises(ParameterError, match="n_anchors"):
        patch_noncontrastive_loss(f, f, n_anchors="3", **heads)
    with pytest.raises(ParameterError, match="anchor_mask"):
        patch_noncontrastive_loss(f, f, anchor_mask=torch.ones(1, 4, 4, dtype=torch.bool), **heads)
    with pytest.raises(ParameterError, match="query_mask"):
        pixel_contrastive_loss(f, f, local_mlp=_Normalize(), n_negatives=4, m=3, query_mask=[[True]])


def test_no_active_term_gives_a_zero_tensor() -> None:
    loss = AsconLoss(None, mse_weight=0, ssim_weight=0, global_weight=0, local_weight=0)
    x = torch.rand(1, 1, 16, 16, requires_grad=True)
    out = loss(x, x.detach())
    assert isinstance(out.total, torch.Tensor) and out.as_dict() == {"total": 0.0}


def test_dtype_mismatch_with_mac_net_is_a_clear_error(pair) -> None:
    ndct, _ = pair
    loss = ascon_loss(mac_net=mac_net(0.125), n_anchors=4, n_queries=16)
    with pytest.raises(ParameterError, match="denoised is torch.float64"):
        loss(ndct.double(), ndct.double())


def test_table_s2_random_positives_and_negatives() -> None:
    """Table S2's ablations: positives drawn at random among the inside neighbours instead of
    the top-4 by similarity, negatives at random among the inside candidates instead of the
    most similar; reproducible for a generator, and not the similarity choice."""
    torch.manual_seed(0)
    feats = torch.randn(1, 8, 6, 6)
    anchors = torch.tensor([[0, 14, 35]])  # a corner (3 neighbours), the middle, the opposite corner
    top, top_valid, _ = select_positives(feats, anchors, k=3)
    rnd, rnd_valid, sim = select_positives(feats, anchors, k=3, matching="random", generator=torch.Generator().manual_seed(1))
    again, _, _ = select_positives(feats, anchors, k=3, matching="random", generator=torch.Generator().manual_seed(1))
    assert torch.equal(rnd, again)
    neigh, inside = gather_neighbours(anchors, window_offsets(1), 6, 6)
    for i in range(3):
        allowed = set(neigh[0, i][inside[0, i]].tolist())
        chosen = rnd[0, i][rnd_valid[0, i]].tolist()
        assert set(chosen) <= allowed and len(set(chosen)) == len(chosen)
    assert rnd_valid[0, 0].sum() == 3  # the corner anchor has exactly 3 neighbours: all of them
    draws = {tuple(select_positives(feats, anchors, k=3, matching="random",
                                    generator=torch.Generator().manual_seed(s))[0][0, 1].tolist()) for s in range(20)}
    assert len(draws) > 5  # the top-3 choice is one fixed set; random matching gives many
    assert top_valid[0, 1].all() and len(set(top[0, 1].tolist())) == 3
    queries = torch.tensor([[14, 21]])
    hard = select_hard_negatives(feats, queries, n_negatives=4, m=3)[0]
    rand_neg, valid, _, cand, inside_c = select_hard_negatives(feats, queries, n_negatives=4, m=3, sampling="random",
                                                                generator=torch.Generator().manual_seed(3))
    for i in range(2):
        assert set(rand_neg[0, i].tolist()) <= set(cand[0, i][inside_c[0, i]].tolist())
    picks = {tuple(sorted(select_hard_negatives(feats, queries, n_negatives=4, m=3, sampling="random",
                                                generator=torch.Generator().manual_seed(s))[0][0, 0].tolist()))
             for s in range(20)}
    assert len(picks) > 5  # many different sets, while the hard choice is always one set
    assert torch.equal(hard, select_hard_negatives(feats, queries, n_negatives=4, m=3)[0])
    with pytest.raises(ParameterError, match="matching must be one of"):
        select_positives(feats, anchors, matching="closest")
    with pytest.raises(ParameterError, match="negative sampling must be one of"):
        select_hard_negatives(feats, queries, sampling="easy")
