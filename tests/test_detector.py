"""LIDnet's detector (ldct_nb.models.detector): built without downloads, one-channel CT
input with the stated normalisation, no resizing, top-K proposals that are the RPN's
best and lie inside the image, weights files checked, and AP-50 / AP-75 equal to
pycocotools and to hand-computed cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from ldct_nb.errors import ParameterError
from ldct_nb.eval.detection import detection_ap
from ldct_nb.models.detector import (
    backbone_features, build_detector, feature_levels, load_detector, proposals_from_features, top_proposals,
    transform_images,
)

torch.set_num_threads(1)
LIGHT = dict(fpn_channels=16, representation_size=32, box_batch_size_per_image=32, proposals_per_image=200)


def images(n: int = 2, size: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, size, size, generator=g) * 0.4 + 0.2


@pytest.mark.parametrize("backbone", ["resnet18_fpn", "mobilenet_v3_fpn", "resnet50_fpn"])
def test_every_backbone_builds_without_any_download_and_takes_one_channel(backbone, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("build_detector tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    det = build_detector(backbone, image_size=64, **LIGHT)
    first = next(m for m in det.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == 1
    feats = backbone_features(det.eval(), images(), level=None)
    levels = feature_levels(det)
    assert list(feats) == list(levels)
    for name, stride in levels.items():  # each level's map is the padded image divided by its stride
        assert feats[name].shape[-1] == math.ceil(64 / stride)
    assert "1 classes" not in repr(det) and backbone in repr(det)


def test_ct_normalisation_and_no_resizing():
    # inputs are on the [0, 1] scale of [-1000, 2000] HU; the transform must give HU / 1000
    det = build_detector("resnet18_fpn", image_size=96, **LIGHT)
    hu = torch.tensor([-1000.0, 0.0, 1000.0, 2000.0]).repeat_interleave(24).reshape(1, 96).repeat(96, 1)
    x = ((hu + 1000) / 3000)[None, None]
    image_list, sizes = transform_images(det, x)
    assert sizes == [(96, 96)] and tuple(image_list.tensors.shape[-2:]) == (96, 96)  # min_size = max_size = 96
    torch.testing.assert_close(image_list.tensors[0, 0], hu / 1000, atol=1e-4, rtol=0)


def test_top_proposals_are_the_k_best_of_the_rpn_inside_the_image():
    torch.manual_seed(0)
    det = build_detector("resnet18_fpn", image_size=64, **LIGHT).eval()
    x = images(3)
    props = top_proposals(det, x, k=5)
    with torch.no_grad():
        image_list, _ = transform_images(det, x)
        feats = det.backbone(image_list.tensors)
        every = proposals_from_features(det, image_list, feats, k=None)
        rpn_boxes, _ = det.rpn(image_list, feats)  # torchvision's own forward (no scores)
        objectness, _ = det.rpn.head(list(feats.values()))
    for i, (boxes, scores) in enumerate(props):
        assert boxes.shape == (5, 4) and scores.shape == (5,)
        assert bool((scores[:-1] >= scores[1:]).all())
        # the K highest of every proposal the RPN keeps, and the first K of its forward
        torch.testing.assert_close(scores, every[i][1].sort(descending=True).values[:5])
        torch.testing.assert_close(boxes, rpn_boxes[i][:5])
        # the best proposal is the anchor of highest objectness (NMS never removes it)
        best = max(float(o[i].max()) for o in objectness)
        assert float(scores[0]) == pytest.approx(1 / (1 + math.exp(-best)), rel=1e-5)
        assert bool((boxes[:, [0, 2]] >= 0).all() and (boxes[:, [0, 2]] <= 64).all())
        assert bool((boxes[:, [1, 3]] >= 0).all() and (boxes[:, [1, 3]] <= 64).all())


def test_top_proposals_map_back_to_the_input_frame_and_restore_the_mode():
    torch.manual_seed(0)
    det = build_detector("resnet18_fpn", image_size=64, **LIGHT)
    assert det.training
    big = torch.nn.functional.interpolate(images(1), size=(128, 128), mode="nearest")
    (boxes, _), = top_proposals(det, big, k=3)
    assert det.training  # mode restored
    det.eval()
    with torch.no_grad():
        image_list, _ = transform_images(det, big)  # resized to 64 px
        assert tuple(image_list.tensors.shape[-2:]) == (64, 64)
        small = proposals_from_features(det, image_list, det.backbone(image_list.tensors), k=3)[0][0]
    torch.testing.assert_close(boxes, small * 2)
    assert bool((boxes <= 128).all())


def test_bad_inputs_and_settings_are_refused():
    det = build_detector("resnet18_fpn", image_size=64, **LIGHT)
    with pytest.raises(ParameterError, match="channel"):
        top_proposals(det, torch.rand(1, 3, 64, 64))
    with pytest.raises(ParameterError, match="Hounsfield|scale"):
        top_proposals(det, torch.rand(1, 1, 64, 64) * 1000)
    with pytest.raises(ParameterError, match=r"\[0, 1\] scale"):
        top_proposals(det, images(1) * 3)  # a denoiser's raw output beyond [0, 1] only with check_range=False
    assert len(top_proposals(det, images(1) * 3, check_range=False)[0][0]) == 5
    with pytest.raises(ParameterError, match="k must be"):
        top_proposals(det, images(1), k=0)
    with pytest.raises(ParameterError, match="level"):
        backbone_features(det, images(1), level="7")
    with pytest.raises(ParameterError, match="backbone must be one of"):
        build_detector("vgg16")
    with pytest.raises(ParameterError, match="num_classes"):
        build_detector("resnet18_fpn", num_classes=1)
    with pytest.raises(ParameterError, match="hu_window"):
        build_detector("resnet18_fpn", hu_window=(100, -100))


def test_weights_file_is_loaded_and_mismatches_are_refused_naming_them(tmp_path):
    torch.manual_seed(1)
    det = build_detector("resnet18_fpn", image_size=64, **LIGHT).eval()
    path = tmp_path / "det.pt"
    torch.save(det.state_dict(), path)
    again = build_detector("resnet18_fpn", image_size=64, **LIGHT, weights=path).eval()
    x = images(1)
    torch.testing.assert_close(top_proposals(again, x)[0][1], top_proposals(det, x)[0][1])
    with pytest.raises(ParameterError, match="another shape"):
        build_detector("resnet18_fpn", image_size=64, **{**LIGHT, "fpn_channels": 8}, weights=path)
    with pytest.raises(ParameterError, match="missing"):
        build_detector("mobilenet_v3_fpn", image_size=64, **LIGHT, weights=path)
    with pytest.raises(ParameterError, match="does not exist"):
        build_detector("resnet18_fpn", weights=tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ParameterError, match="cannot be read"):
        build_detector("resnet18_fpn", weights=tmp_path / "junk.pt")
    with pytest.raises(ParameterError, match="no detector_config"):
        load_detector(path)


# ----------------------------------------------------------------------------- AP-50 / AP-75


def _coco_ap(predictions, targets) -> tuple[float, float]:
    """AP-50 and AP-75 from pycocotools' COCOeval directly (the reference implementation)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns, dets = [], [], []
    for i, (p, t) in enumerate(zip(predictions, targets)):
        images.append({"id": i, "width": 512, "height": 512})
        for b in np.asarray(t["boxes"], float):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "bbox": [b[0], b[1], w, h],
                         "area": w * h, "iscrowd": 0})
        for b, s in zip(np.asarray(p["boxes"], float), np.asarray(p["scores"], float)):
            dets.append({"image_id": i, "category_id": 1, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                         "score": float(s)})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "lesion"}]}
    gt.createIndex()
    ev = COCOeval(gt, gt.loadRes(dets), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return float(ev.stats[1]), float(ev.stats[2])


def test_ap_equals_pycocotools_on_constructed_boxes():
    rng = np.random.default_rng(3)
    preds, targets = [], []
    for _ in range(6):
        n = int(rng.integers(1, 4))
        xy = rng.uniform(0, 400, (n, 2))
        gt = np.concatenate([xy, xy + rng.uniform(10, 60, (n, 2))], 1)
        # detections: jittered copies of the boxes (some good, some poor) and false positives
        jitter = gt + rng.normal(0, 6, gt.shape)
        fp = np.concatenate([(q := rng.uniform(0, 400, (2, 2))), q + 30], 1)
        boxes = np.concatenate([jitter, fp])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        preds.append({"boxes": boxes, "scores": rng.uniform(0.05, 1, len(boxes)), "labels": np.ones(len(boxes), int)})
        targets.append({"boxes": gt, "labels": np.ones(n, int)})
    ours = detection_ap(preds, targets)
    ap50, ap75 = _coco_ap(preds, targets)
    assert ours["ap50"] == pytest.approx(ap50, abs=1e-6)
    assert ours["ap75"] == pytest.approx(ap75, abs=1e-6)
    assert 0 < ours["ap75"] < ours["ap50"] < 1  # the case is neither trivial nor hopeless


def test_ap_hand_computed_cases():
    gt = {"boxes": [[10, 10, 50, 50]], "labels": [1]}
    hit, miss = [10, 10, 50, 50], [200, 200, 240, 240]
    # the true positive ranked first: precision 1 at recall 1 -> AP 1
    first = detection_ap([{"boxes": [hit, miss], "scores": [0.9, 0.8], "labels": [1, 1]}], [gt])
    assert first["ap50"] == pytest.approx(1.0) and first["ap75"] == pytest.approx(1.0)
    # a false positive ranked first: precision 1/2 at recall 1; interpolated precision 0.5 at every recall -> 0.5
    second = detection_ap([{"boxes": [hit, miss], "scores": [0.7, 0.8], "labels": [1, 1]}], [gt])
    assert second["ap50"] == pytest.approx(0.5)
    # IoU of [10, 10, 50, 60] with the box: 1600 / 2000 = 0.8 -> counts at 0.5 and 0.75; [10, 10, 50, 70]: 1600/2400 = 0.67
    loose = detection_ap([{"boxes": [[10, 10, 50, 70]], "scores": [0.9], "labels": [1]}], [gt])
    assert float(box_iou(torch.tensor([[10.0, 10, 50, 70]]), torch.tensor([[10.0, 10, 50, 50]]))) == pytest.approx(2 / 3)
    assert loose["ap50"] == pytest.approx(1.0) and loose["ap75"] == pytest.approx(0.0)
    nothing = detection_ap([{"boxes": np.zeros((0, 4)), "scores": [], "labels": []}], [{"boxes": np.zeros((0, 4)), "labels": []}])
    assert math.isnan(nothing["ap50"]) and nothing["targets"] == 0


def test_ap_refuses_malformed_input_naming_it():
    good = {"boxes": [[0, 0, 5, 5]], "labels": [1]}
    with pytest.raises(ParameterError, match="scores"):
        detection_ap([good], [good])
    with pytest.raises(ParameterError, match="1 predictions but 2 targets"):
        detection_ap([{**good, "scores": [1.0]}], [good, good])
    with pytest.raises(ParameterError, match=r"x2 < x1"):
        detection_ap([{"boxes": [[5, 5, 0, 0]], "scores": [1.0], "labels": [1]}], [good])
    with pytest.raises(ParameterError, match="M x 4"):
        detection_ap([{"boxes": [[0, 0, 5]], "scores": [1.0], "labels": [1]}], [good])
    with pytest.raises(ParameterError, match="one dict per image"):
        detection_ap({**good, "scores": [1.0]}, good)
