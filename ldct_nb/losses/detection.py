"""LIDnet's detection loss, eq. (6), and the frozen detector of its T2 phase.

Eq. (6) is Faster R-CNN's loss on the denoised images (Ren et al. 2015): the
classification cross-entropy and smooth-L1 box regression of the ROI heads
(``S_1``, ``S_2``) and of the RPN. :func:`detection_forward` runs torchvision's
own steps (transform, backbone, RPN, ROI heads) and returns the four losses
together with what the ROI perceptual loss (eq. 4) reuses: the transformed
images, the backbone features and the RPN's proposals (sorted by objectness,
so the first K are eq. 3's top-K). Their sum is ``L_det``.

:func:`frozen_detector` is how the detector is frozen while the denoiser
trains (LIDnet Algorithm 1, line 11): no parameter requires a gradient (the
gradient still flows through it to the denoised image), every BatchNorm layer
is in eval mode (its running statistics do not move), and the RPN and ROI
heads stay in training mode so that they compute their losses. The previous
state is restored on exit.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

__all__ = ["detection_forward", "detection_loss", "frozen_detector"]

Tensor = torch.Tensor


def detection_forward(detector: nn.Module, images: Sequence[Tensor], targets: Sequence[dict]):
    """torchvision's ``GeneralizedRCNN.forward`` in training mode, opened up:
    returns ``(losses, image_list, features, proposals)``: the four Faster R-CNN
    losses (``loss_classifier``, ``loss_box_reg``, ``loss_objectness``,
    ``loss_rpn_box_reg``), the transformed images, the backbone's FPN features and
    the RPN's proposals per image (transformed frame, sorted by objectness). The
    RPN and ROI heads must be in training mode (they compute losses only then)."""
    if not (detector.rpn.training and detector.roi_heads.training):
        raise RuntimeError("detection_forward needs the RPN and ROI heads in training mode (detector.train(), or "
                           "inside frozen_detector)")
    image_list, targets_t = detector.transform(list(images), [dict(t) for t in targets])
    features = detector.backbone(image_list.tensors)
    proposals, rpn_losses = detector.rpn(image_list, features, targets_t)
    _, roi_losses = detector.roi_heads(features, proposals, image_list.image_sizes, targets_t)
    return {**roi_losses, **rpn_losses}, image_list, features, proposals


def detection_loss(detector: nn.Module, images: Sequence[Tensor], targets: Sequence[dict]) -> tuple[Tensor, dict[str, float]]:
    """``L_det`` (eq. 6): the sum of the four Faster R-CNN losses, and each as a float."""
    losses, *_ = detection_forward(detector, images, targets)
    return sum(losses.values()), {k: float(v.detach()) for k, v in losses.items()}


@contextlib.contextmanager
def frozen_detector(detector: nn.Module) -> Iterator[nn.Module]:
    """Freeze ``detector`` for a denoiser step (see the module docstring); restores on exit."""
    params = list(detector.parameters())
    grads = [p.requires_grad for p in params]
    modes = {m: m.training for m in detector.modules()}
    try:
        for p in params:
            p.requires_grad_(False)
        detector.train()
        for m in detector.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        yield detector
    finally:
        for p, g in zip(params, grads):
            p.requires_grad_(g)
        for m, mode in modes.items():
            m.training = mode
