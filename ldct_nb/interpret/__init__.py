"""Anatomical interpretability, measured (ASCON sec. 3.2, Fig. 3; notebook 07).

ASCON shows that the features before ESAU-Net's last layer, clustered with K-means,
look like an organ segmentation when MAC-Net is trained with it, and that their t-SNE
is more compact within tissues and better separated between them. This package turns
that picture into numbers on data with tissue labels::

    extract_features(model, images, layer=None) -> N x C x H x W     # forward hook (features.py)
    output_layer(model) / default_layer(model)                       # the hooked layer of any denoiser
    cluster_agreement(features, labels, k=None, seed=0) -> dict      # ARI, NMI, silhouettes, distances
    tsne_embedding(features, seed=0), stratified_sample(labels, per_class, seed)
    interpret_checkpoints(checkpoints, split, ...) -> Study           # slices x seeds x models (study.py)
    summarize(scores, metrics), compare_models(...), paired_test(a, b), reading(...)   (compare.py)
    overlap_fraction(proposals, lesions), proposal_table(...)        # LIDnet's view (proposals.py)

On real data without tissue labels the same maps and t-SNE are made and only the
label-free score (silhouette of the clusters) is given.
"""
from __future__ import annotations

from ldct_nb.interpret.clusters import (
    HIGHER_IS_BETTER, LABEL_SCORES, SCORES, UNLABELLED_SCORES, body_mask, cluster_agreement, kmeans_clusters,
    match_clusters, order_by_intensity, separation, stratified_sample, tsne_embedding,
)
from ldct_nb.interpret.compare import compare_models, paired_test, reading, summarize
from ldct_nb.interpret.features import FeatureHook, align_to_image, default_layer, extract_features, output_layer
from ldct_nb.interpret.proposals import lidnet_paths, overlap_fraction, proposal_table
from ldct_nb.interpret.study import Study, checkpoint_paths, interpret_checkpoints, save_study

__all__ = [
    "HIGHER_IS_BETTER", "LABEL_SCORES", "SCORES", "UNLABELLED_SCORES", "FeatureHook", "Study", "align_to_image",
    "body_mask", "checkpoint_paths", "cluster_agreement", "compare_models", "default_layer", "extract_features",
    "interpret_checkpoints", "kmeans_clusters", "lidnet_paths", "match_clusters", "order_by_intensity",
    "output_layer", "overlap_fraction", "paired_test", "proposal_table", "reading", "save_study", "separation",
    "stratified_sample", "summarize", "tsne_embedding",
]
