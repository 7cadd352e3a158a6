"""Anatomical interpretability (ldct_nb.interpret): the hooked layer of every registered
denoiser, K-means agreement with known groups, scores against hand arithmetic, the
paired test, the proposal overlap, and the study on trained checkpoints (notebook 07).

Independent references: the autograd graph (the input saved by the convolution nearest to
the output), hand-computed distances and silhouettes on four points, the exact
Wilcoxon null distribution (2 / 2**n for n pairs of one sign), hand-computed IoU.
"""
from __future__ import annotations

import warnings
from collections import deque

import numpy as np
import pandas as pd
import pytest
import torch

from ldct_nb.errors import ParameterError
from ldct_nb.interpret import (
    FeatureHook, align_to_image, body_mask, checkpoint_paths, cluster_agreement, compare_models, default_layer,
    extract_features, interpret_checkpoints, match_clusters, order_by_intensity, output_layer, overlap_fraction,
    paired_test, proposal_table, reading, save_study, separation, stratified_sample, summarize, tsne_embedding,
)
from ldct_nb.interpret.clusters import CollapsedFeaturesWarning, kmeans_clusters, principal_rgb
from ldct_nb.interpret.features import registered_layers
from ldct_nb.interpret.proposals import lidnet_missing, lidnet_paths
from ldct_nb.models import available, build

SMALL = {
    "esau_net": dict(stem=8, widths=(8, 16), heads=(1, 2), bottleneck_hidden=16),
    "unet": dict(base=4, depth=2),
    "red_cnn": dict(channels=8),
    "edcnn": dict(sobel_ch=4, width=4, blocks=3),
    "wgan_vgg": dict(width=4, layers=3),
    "du_gan": dict(channels=8),
    "cncl": dict(base=4, depth=2, fusion_width=4),
    "cpce": dict(width=4),
    "map_nn": dict(modules=2, width=4),
    "ssms": dict(width=4, layers=3),
    "res_hlf": dict(width=4, blocks=2),
}


def small_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build(name, **SMALL.get(name, {})).eval()


def nearest_convolution(output: torch.Tensor):
    """The convolution node of the autograd graph nearest to ``output`` (breadth first)."""
    seen, queue = set(), deque([output.grad_fn])
    while queue:
        node = queue.popleft()
        if node is None or node in seen:
            continue
        seen.add(node)
        if type(node).__name__.startswith("ConvolutionBackward"):
            return node
        queue.extend(n for n, _ in node.next_functions)
    raise AssertionError("no convolution in the graph")


def groups(n_per: int = 200, k: int = 4, c: int = 6, spread: float = 0.3, seed: int = 0):
    """Features of k well separated Gaussian groups (centres 10 apart) and their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, c)) * 10
    labels = np.repeat(np.arange(k), n_per)
    return centres[labels] + rng.normal(size=(labels.size, c)) * spread, labels


# ----------------------------------------------------------------------------- hooks


def test_every_registered_model_is_covered():
    assert set(SMALL) == set(available()), "a registered model has no small test configuration"


@pytest.mark.parametrize("name", sorted(SMALL))
def test_hook_takes_the_input_of_the_layer_that_produces_the_output(name):
    """The hooked tensor is the input saved by the convolution nearest to the output in the
    autograd graph (the layer feeding the output), and the hooked layer holds its weight."""
    model = small_model(name)
    x = torch.rand(2, 1, 37, 41, generator=torch.Generator().manual_seed(1))
    layer, capture = default_layer(model)
    assert capture == "input"
    with FeatureHook(model, layer, "input") as hook:
        y = model(x)
    node = nearest_convolution(y)
    assert hook.calls == 1
    assert torch.equal(hook.value, node._saved_input)
    assert node._saved_weight is dict(model.named_modules())[layer].weight
    feats = extract_features(model, x)
    assert feats.shape[:1] == (2,) and feats.shape[-2:] == (37, 41)
    assert feats.shape[1] == node._saved_input.shape[1]


def test_registered_layers_table_names_each_model_once():
    rows = registered_layers()
    assert [r["model"] for r in rows] == available()
    esau = next(r for r in rows if r["model"] == "esau_net")
    assert esau["output layer"] == "head.2" and esau["feature channels"] == build("esau_net").config.stem


def test_features_equal_a_manual_pass_and_leave_the_model_unchanged():
    """ESAU-Net: the default features are the head's LeakyReLU output (the input of head.2),
    computed here by hand from ``features()``; BatchNorm-free, and the mode is restored."""
    model = small_model("esau_net").train()
    x = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    feats = extract_features(model, x)
    assert model.training
    with torch.no_grad():
        model.eval()
        h = model.features(x)
        last_hidden = model.head[1](model.head[0](h["dec1"]))
    torch.testing.assert_close(feats, last_hidden.float())


def test_named_layer_output_and_alignment():
    model = small_model("esau_net")
    x = torch.rand(1, 1, 30, 30)
    enc = extract_features(model, x, layer="encoder.1")  # H/2 map resized onto the image grid
    assert enc.shape == (1, 16, 30, 30)
    # unpadded convolutions: a map 4 pixels smaller is centred (edge-padded 2 on each side)
    small = torch.arange(36.0).reshape(1, 1, 6, 6)
    out = align_to_image(small, (10, 10))
    assert torch.equal(out[..., 2:8, 2:8], small) and torch.equal(out[..., 0, 2:8], small[..., 0, :])
    big = torch.arange(36.0).reshape(1, 1, 6, 6)
    assert torch.equal(align_to_image(big, (4, 5)), big[..., :4, :5])


def test_red_cnn_features_are_centred_on_the_image():
    """RED-CNN's last transposed convolution (5 x 5, no padding) maps input pixel j to output
    pixels j .. j + 4, centred on j + 2: a feature map that marks one input pixel must land
    two pixels further in the image grid."""
    model = small_model("red_cnn")
    x = torch.zeros(1, 1, 25, 25)
    x[..., 12, 12] = 1.0
    feats = extract_features(model, x)
    base = extract_features(model, torch.zeros_like(x))
    change = (feats - base).abs().sum(1)[0]
    r, c = np.unravel_index(int(change.argmax()), change.shape)
    assert abs(r - 12) <= 1 and abs(c - 12) <= 1


# ----------------------------------------------------------------------------- clustering


def test_known_groups_are_recovered_and_shuffled_features_are_not():
    x, y = groups()
    good = cluster_agreement(x, y, seed=0)
    assert good["k"] == 4
    assert good["ari"] > 0.99 and good["nmi"] > 0.99
    assert good["silhouette"] > 0.8 and good["intra_inter"] < 0.1
    shuffled = cluster_agreement(x[np.random.default_rng(1).permutation(len(y))], y, seed=0)
    assert abs(shuffled["ari"]) < 0.02 and shuffled["nmi"] < 0.02
    assert shuffled["silhouette"] < 0.05


def test_results_are_deterministic_for_a_seed():
    x, y = groups(spread=4.0)  # overlapping groups: K-means depends on its initialisation
    a = cluster_agreement(x, y, seed=3, return_clusters=True)
    b = cluster_agreement(x, y, seed=3, return_clusters=True)
    assert np.array_equal(a.pop("clusters"), b.pop("clusters"))
    assert a == b
    e1 = tsne_embedding(x[:120], seed=5)
    e2 = tsne_embedding(x[:120], seed=5)
    assert np.array_equal(e1, e2)


def test_k_defaults_to_the_classes_present_and_unlabelled_data_need_k():
    x, y = groups(k=3)
    assert cluster_agreement(x, y + 5)["k"] == 3  # labels 5, 6, 7: three classes present
    res = cluster_agreement(x, None, k=3)
    assert set(res) == {"k", "n", "silhouette_clusters"}
    assert res["silhouette_clusters"] > 0.8
    with pytest.raises(ParameterError, match="k is required"):
        cluster_agreement(x, None)


def test_separation_and_silhouette_by_hand():
    """1-D points 0, 2 (class a) and 10, 12 (class b): centroids 1 and 11, every point 1 from its
    centroid, centroids 10 apart, RMS distance to the mean 6 is sqrt(26). Silhouettes: point 0
    a = 2, b = 11 -> 9/11; point 2: a = 2, b = 9 -> 7/9; symmetric for b; mean (9/11 + 7/9) / 2."""
    x = np.array([[0.0], [2.0], [10.0], [12.0]])
    y = np.array([0, 0, 1, 1])
    s = separation(x, y)
    assert s["intra"] == pytest.approx(1 / np.sqrt(26))
    assert s["inter"] == pytest.approx(10 / np.sqrt(26))
    assert s["intra_inter"] == pytest.approx(0.1)
    res = cluster_agreement(x, y, seed=0)
    assert res["silhouette"] == pytest.approx((9 / 11 + 7 / 9) / 2)
    assert res["ari"] == pytest.approx(1.0)
    # scaling the features changes none of the scores
    assert separation(7.0 * x, y) == pytest.approx(s)


def test_stratified_sample_caps_each_class():
    labels = np.array([0] * 50 + [1] * 3 + [2] * 20)
    idx = stratified_sample(labels, 10, seed=0)
    counts = np.bincount(labels[idx])
    assert counts.tolist() == [10, 3, 10]
    assert np.array_equal(idx, stratified_sample(labels, 10, seed=0))
    assert not np.array_equal(idx, stratified_sample(labels, 10, seed=1))


def test_cluster_matching_undoes_a_permutation():
    labels = np.repeat([0, 3, 5], 10)
    clusters = np.repeat([2, 0, 1], 10)
    mapping = match_clusters(clusters, labels, n_labels=6)
    assert np.array_equal(mapping[clusters], labels)
    extra = match_clusters(np.array([0, 1, 2, 3]), np.array([1, 1, 0, 0]), n_labels=2)
    assert sorted(extra.tolist()) == [0, 1, 2, 3]  # two clusters matched, two get 2 and 3
    order = order_by_intensity(np.array([0, 0, 1, 1, 2]), np.array([50.0, 50.0, -900.0, -900.0, 0.0]))
    assert order.tolist() == [2, 0, 1]


def test_principal_rgb_ignores_scale_and_offset_and_separates_groups():
    x, y = groups(k=2, c=5)
    rgb = principal_rgb(x)
    assert rgb.shape == (len(y), 3) and rgb.min() >= 0 and rgb.max() <= 1
    np.testing.assert_allclose(principal_rgb(4.0 * x + 3.0), rgb, atol=1e-9)
    # the first component separates the two groups: their red channels do not overlap
    r0, r1 = rgb[y == 0, 0], rgb[y == 1, 0]
    assert r0.max() < r1.min() or r1.max() < r0.min()
    two = principal_rgb(x[:, :2])
    assert np.all(two[:, 2] == 0)  # two channels: two components, blue stays zero


def test_collapsed_features_are_named_not_left_to_scikit_learn():
    # A dead layer gives constant features: k-means finds one cluster and PCA has no variance to divide by.
    import warnings

    flat = np.ones((40, 4))
    with pytest.warns(CollapsedFeaturesWarning, match=r"only 1 distinct row"):
        ids = kmeans_clusters(flat, 3)
    assert np.all(ids == ids[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb = principal_rgb(flat)
    np.testing.assert_array_equal(rgb, 0.5)
    x, _ = groups(k=3, c=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # three real groups: no warning
        assert len(np.unique(kmeans_clusters(x, 3))) == 3


def test_body_mask_with_and_without_labels():
    labels = np.zeros((8, 8), np.uint8)
    labels[2:6, 2:6] = 3
    assert body_mask(labels).sum() == 16
    hu = np.full((9, 9), -1000.0)
    hu[1:8, 1:8] = 40.0
    hu[3:6, 3:6] = -850.0  # lung inside the body: holes are filled
    assert body_mask(None, hu).sum() == 49


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: cluster_agreement(np.zeros((5,)), None, k=2), "N x C"),
        (lambda: cluster_agreement(np.full((4, 2), np.nan), np.arange(4)), "NaN"),
        (lambda: cluster_agreement(np.zeros((4, 2)), np.arange(3)), "one per feature row"),
        (lambda: cluster_agreement(np.zeros((4, 2)), np.array([0.5, 1, 2, 3])), "integer class labels"),
        (lambda: cluster_agreement(np.zeros((4, 2)), np.zeros(4, int)), "single class"),
        (lambda: cluster_agreement(np.random.rand(4, 2), None, k=9), "at least 9"),
        (lambda: cluster_agreement(np.random.rand(4, 2), None, k=2, seed=-1), "seed"),
        (lambda: cluster_agreement("features", None, k=2), "numeric N x C"),
        (lambda: stratified_sample(np.arange(4), 0), "per_class"),
        (lambda: tsne_embedding(np.zeros((3, 2))), "at least 4"),
        (lambda: separation(np.zeros((4, 2)), np.zeros(4, int)), "two classes"),
        (lambda: body_mask(None, None), "tissue labels or the NDCT"),
    ],
)
def test_bad_clustering_inputs_are_refused(call, match):
    with pytest.raises(ParameterError, match=match):
        call()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: output_layer("not a model"), "torch.nn.Module"),
        (lambda: output_layer(torch.nn.ReLU()), "no layer with weights"),
        (lambda: output_layer(small_model("red_cnn"), torch.zeros(1, 1, 8, 8)), "probe forward pass"),
        (lambda: extract_features(small_model("unet"), torch.zeros(2, 3, 8, 8)), "N x 1 x H x W"),
        (lambda: extract_features(small_model("unet"), torch.full((8, 8), float("nan"))), "NaN"),
        (lambda: extract_features(small_model("unet"), torch.zeros(8, 8), layer="head.9"), "not a module"),
        (lambda: extract_features(small_model("unet"), torch.zeros(8, 8), batch_size=0), "batch_size"),
        (lambda: FeatureHook(small_model("unet"), "out", capture="weights"), "capture"),
    ],
)
def test_bad_feature_inputs_are_refused(call, match):
    with pytest.raises(ParameterError, match=match):
        call()


# ----------------------------------------------------------------------------- comparison


def test_paired_test_matches_the_exact_null_distribution():
    """Six pairs, all differences positive: the exact two-sided p is 2 / 2**6 = 0.03125;
    statistic (smaller rank sum) 0. All-zero differences: p = 1."""
    a = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    res = paired_test(a, a + np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06]))
    assert res["p_value"] == pytest.approx(0.03125)
    assert res["statistic"] == 0 and res["n"] == 6 and res["median_difference"] == pytest.approx(0.035)
    assert paired_test(a, a)["p_value"] == 1.0
    with pytest.raises(ParameterError, match="same length"):
        paired_test(a, a[:3])
    with pytest.raises(ParameterError, match="NaN"):
        paired_test([np.nan], [1.0])


def _scores(values_a, values_b, metric="ari", seeds=(0,)):
    rows = []
    for seed in seeds:
        for i, (a, b) in enumerate(zip(values_a, values_b)):
            rows += [{"model": "base", "seed": seed, "slice": i, metric: a},
                     {"model": "new", "seed": seed, "slice": i, metric: b}]
    return pd.DataFrame(rows)


def test_summary_spreads_over_slices_and_seeds():
    df = _scores([0.1, 0.3], [0.2, 0.4], seeds=(0, 1))
    df.loc[(df["model"] == "base") & (df["seed"] == 1), "ari"] += 0.2  # seed 1 of base is 0.2 higher
    s = summarize(df, ["ari"])
    # base: per slice means 0.2, 0.4 -> mean 0.3, std over slices 0.1414; per seed means 0.2, 0.4 -> std 0.1414
    assert s.loc["base", ("ari", "mean")] == pytest.approx(0.3)
    assert s.loc["base", ("ari", "std_slices")] == pytest.approx(np.sqrt(0.02))
    assert s.loc["base", ("ari", "std_seeds")] == pytest.approx(np.sqrt(0.02))
    assert s.loc["new", ("ari", "std_seeds")] == pytest.approx(0.0)


def test_comparison_and_reading_follow_the_direction_of_each_score():
    better = np.linspace(0.5, 0.8, 8)
    df = _scores(better - 0.1, better)
    c = compare_models(df, "base", "new", ["ari"])
    assert bool(c.loc["ari", "candidate_better"]) and c.loc["ari", "candidate_wins"] == 8
    assert "support the paper's reading" in reading(c, "base", "new")["verdict"]
    # intra_inter: lower is better, so the same numbers now favour the baseline
    df2 = _scores(better - 0.1, better, metric="intra_inter")
    c2 = compare_models(df2, "base", "new", ["intra_inter"])
    assert c2.loc["intra_inter", "candidate_better"] == False  # noqa: E712 (a numpy bool)
    text = reading(c2, "base", "new")
    assert "not reproduced" in text["verdict"] and "baseline's favour" in text["intra_inter"]
    small = compare_models(_scores([0.1, 0.2, 0.3], [0.2, 0.3, 0.4]), "base", "new", ["ari"])
    assert "cannot reach" in reading(small, "base", "new")["ari"]
    assert "neither confirmed nor refuted" in reading(small, "base", "new")["verdict"]
    with pytest.raises(ParameterError, match="not a model"):
        compare_models(df, "base", "other", ["ari"])
    with pytest.raises(ParameterError, match="lack the column"):
        compare_models(df, "base", "new", ["nmi"])


# ----------------------------------------------------------------------------- proposals


def test_overlap_fraction_by_hand():
    """Lesion (0, 0, 10, 10). Proposal (0, 0, 10, 10): IoU 1. (5, 0, 15, 10): 50 / 150 = 1/3.
    (20, 20, 30, 30): 0. At threshold 0.5: 1 of 3; at 0.3: 2 of 3; at 0 (any overlap): 2 of 3."""
    lesion = [[0, 0, 10, 10]]
    props = [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]
    assert overlap_fraction(props, lesion, 0.5) == pytest.approx(1 / 3)
    assert overlap_fraction(props, lesion, 0.3) == pytest.approx(2 / 3)
    assert overlap_fraction(props, lesion, 0.0) == pytest.approx(2 / 3)
    assert np.isnan(overlap_fraction(np.zeros((0, 4)), lesion))
    assert overlap_fraction(props, np.zeros((0, 4))) == 0.0
    with pytest.raises(ParameterError, match="x2 >= x1"):
        overlap_fraction([[5, 0, 1, 10]], lesion)
    with pytest.raises(ParameterError, match="M x 4"):
        overlap_fraction([[1, 2, 3]], lesion)
    with pytest.raises(ParameterError, match="iou_threshold"):
        overlap_fraction(props, lesion, 1.5)


def test_proposal_table_scores_each_image_kind():
    lesions = [np.array([[0, 0, 10, 10]], np.float32), np.zeros((0, 4), np.float32)]
    images = {"LDCT": torch.zeros(2, 1, 16, 16), "denoised": torch.ones(2, 1, 16, 16)}

    def propose(batch):  # boxes on the lesion only for the "denoised" (all-ones) batch
        box = [0.0, 0.0, 10.0, 10.0] if batch.mean() > 0.5 else [12.0, 12.0, 16.0, 16.0]
        return [(torch.tensor([box]), torch.tensor([0.9])) for _ in range(batch.shape[0])]

    table, props = proposal_table(propose, images, lesions)
    assert table.loc["LDCT", "overlap_fraction"] == 0.0 and table.loc["denoised", "overlap_fraction"] == 1.0
    assert table.loc["denoised", "slices_with_lesions"] == 1  # the slice without lesions is not scored
    with pytest.raises(ParameterError, match="N = 2"):
        proposal_table(propose, {"LDCT": torch.zeros(3, 1, 16, 16)}, lesions)


def test_lidnet_inputs_missing_are_listed(tmp_path):
    missing = lidnet_missing(tmp_path, "synthetic_pe_ct", "wgan_vgg", "lidnet_wgan_vgg", "pe_test")
    paths = lidnet_paths(tmp_path, "synthetic_pe_ct", "wgan_vgg", "lidnet_wgan_vgg")
    text = " ".join(missing)
    assert all(str(p) in text for p in paths.values())
    assert "'pe_test' of synthetic_pe_ct" in text or "ldct_nb.train.lidnet" in text  # the data, or the module to find it
    with pytest.raises(ParameterError, match="folder name"):
        lidnet_paths(tmp_path, "a/b", "x", "y")


# ----------------------------------------------------------------------------- the study


class FakeSplit:
    """A CacheSplit stand-in: two slices of a disc (fat ring, liver core) in air."""

    tissues = ("air", "fat", "muscle", "liver")
    hu_window = (-1000.0, 2000.0)

    def __init__(self, labelled: bool = True):
        yy, xx = np.mgrid[:32, :32]
        r = np.hypot(yy - 15.5, xx - 15.5)
        lab = np.where(r < 6, 3, np.where(r < 10, 2, np.where(r < 13, 1, 0))).astype(np.uint8)
        hu = np.choose(lab, [-1000.0, -100.0, 50.0, 60.0]).astype(np.float32)
        rng = np.random.default_rng(0)
        self.ndct = np.stack([hu, hu])
        self.ldct = self.ndct + rng.normal(0, 20, self.ndct.shape).astype(np.float32)
        self.labels = np.stack([lab, lab]) if labelled else None

    def __len__(self):
        return 2


def test_study_scores_every_checkpoint_slice_and_seed(tmp_path):
    nets = {"a": small_model("esau_net"), "b": small_model("unet")}
    ckpts = {"A": {0: tmp_path / "a0", 1: tmp_path / "a1"}, "B": {0: tmp_path / "b0"}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study = interpret_checkpoints(ckpts, FakeSplit(), loader=lambda p: nets[p.name[0]], progress=False,
                                      tsne_per_class=10, figure_slice=1)
    # the untrained ESAU-Net's last layer input is constant on some slices: one warning per checkpoint, named
    collapsed = [str(w.message) for w in caught if issubclass(w.category, CollapsedFeaturesWarning)]
    assert collapsed and all(m.startswith(("A (", "B (")) and "slice(s)" in m for m in collapsed), collapsed
    assert len(collapsed) <= len(ckpts["A"]) + len(ckpts["B"])  # once per checkpoint, not per slice
    assert not any("Number of distinct clusters" in str(w.message) for w in caught)
    assert len(study.scores) == 2 * 2 + 2
    assert set(study.scores["k"]) == {3}  # fat, muscle, liver inside the body
    assert study.maps["A"].shape == (32, 32) and (study.maps["A"] == -1).sum() == (FakeSplit().labels[1] == 0).sum()
    assert study.samples["B"]["features"].shape == (30, 4)  # 10 pixels of each of 3 tissues, 4 U-Net channels
    assert study.layers == {"A": "head.2 (input of the layer)", "B": "out (input of the layer)"}
    outside = FakeSplit().labels[1] == 0
    assert study.pca["A"].shape == (32, 32, 3) and np.all(study.pca["A"][outside] == 0)
    paths = save_study(study, tmp_path / "out", summary=summarize(study.scores, study.metrics), text={"verdict": "x"})
    back = pd.read_csv(paths["scores"])
    assert len(back) == len(study.scores) and back["ari"].notna().all()
    unlabelled = interpret_checkpoints({"A": {0: tmp_path / "a0"}}, FakeSplit(labelled=False),
                                       loader=lambda p: nets["a"], progress=False, unlabelled_clusters=3)
    assert not unlabelled.labelled and unlabelled.metrics == ["silhouette_clusters"]
    assert unlabelled.scores["ari"].isna().all() and unlabelled.scores["silhouette_clusters"].notna().all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(region="lungs"), "region"),
        (dict(n_clusters=1), "n_clusters"),
        (dict(slices=[5]), "slices"),
        (dict(figure_slice=1, slices=[0]), "figure_slice"),
        (dict(threads=0), "threads"),
    ],
)
def test_study_refuses_bad_parameters(tmp_path, kwargs, match):
    net = small_model("unet")
    with pytest.raises(ParameterError, match=match):
        interpret_checkpoints({"A": {0: tmp_path / "a"}}, FakeSplit(), loader=lambda p: net, progress=False, **kwargs)


def test_missing_checkpoints_are_named_with_the_notebook_that_writes_them(tmp_path):
    (tmp_path / "ckpt" / "table1" / "esau_net" / "seed0").mkdir(parents=True)
    (tmp_path / "ckpt" / "table1" / "esau_net" / "seed0" / "best.pt").write_bytes(b"x")
    with pytest.raises(ParameterError) as err:
        checkpoint_paths(tmp_path, "table1", {"E": "esau_net", "A": "ascon"}, [0, 1], made_by="notebook 04")
    text = str(err.value)
    assert "3 checkpoint(s) missing" in text and "notebook 04" in text
    assert "ascon/seed0/best.pt" in text and "esau_net/seed1/best.pt" in text and "esau_net/seed0" not in text
    with pytest.raises(ParameterError, match="seeds"):
        checkpoint_paths(tmp_path, "table1", {"E": "esau_net"}, [])
    with pytest.raises(ParameterError, match="which"):
        checkpoint_paths(tmp_path, "table1", {"E": "esau_net"}, [0], which="first")
