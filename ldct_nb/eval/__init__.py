"""Evaluation: image-quality metrics on HU images (:mod:`ldct_nb.eval.metrics`), CNR,
detection AP, lesion radiomics, and the papers' tables with paired statistics."""
from __future__ import annotations

from ldct_nb.eval.metrics import ASCON_WINDOW, WINDOWS, psnr, rmse, slice_metrics, ssim, to_unit, window_range

__all__ = ["ASCON_WINDOW", "WINDOWS", "psnr", "rmse", "slice_metrics", "ssim", "to_unit", "window_range"]
