"""ASCON's total loss (MICCAI 2023, sec. 2.4) with the paper and official presets.

Paper: ``L = L_global + L_local + lambda (L_MSE + L_SSIM)``, lambda = 10, with
``L_SSIM = 1 - SSIM``. Official code (GitHub hao1635/ASCON): the denoiser is
trained on ``100 MSE + 10 (1 - SSIM) + 0.1 MAC`` with
``MAC = 0.5 L_global + 0.5 L_local``, InfoNCE temperature effectively 1 and
the background filter off.

Training alternates two steps per iteration (official code; Algorithm S1):

1. **MAC-Net step**: :meth:`AsconLoss.mac_loss` on the *detached* denoised
   image and the NDCT image updates the online branch (backbone, projector,
   predictor, local MLP); then :meth:`AsconLoss.update_target` moves the EMA
   target.
2. **Denoiser step**: :meth:`AsconLoss.denoiser_loss` (also ``forward``) with
   MAC-Net frozen (its parameters collect no gradient) but differentiable with
   respect to the denoised image, and fresh random samples.

The caller chooses MAC-Net's train / eval mode (BatchNorm statistics). Note
that a freshly initialised MAC-Net in eval mode (running statistics 0 / 1)
gives nearly constant features, so its contrastive terms do not depend on the
image (InfoNCE stays at log(1 + N_neg)); use train mode (batch statistics) as
training does.

Every term has its own weight, so the ablation rows of Table 2 are presets
(:data:`ABLATIONS`): MSE; MSE + perceptual; MSE + SSIM; + global; + local;
+ both. The perceptual term needs a feature network passed in
(``perceptual_net``, any :class:`torch.nn.Module` mapping a (B, 1, H, W) image
in [0, 1] to a feature tensor or a list of them).

Sampling sizes (see :mod:`ldct_nb.losses.patch_contrast` about the paper's
naming): :data:`SAMPLING_PRESETS` ``mayo2016`` = 32 anchors on the H/16 grid,
512 pixel queries, 24 negatives (default); ``mayo2020`` = 16, 256, 24.
"""
from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ldct_nb.errors import ParameterError
from ldct_nb.losses.patch_contrast import MATCHINGS, PatchSample, grid_mask, patch_noncontrastive_loss
from ldct_nb.losses.pixel_contrast import (
    DISTANCES, NEGATIVE_SAMPLINGS, TAU, PixelSample, candidate_offsets, pixel_contrastive_loss,
)
from ldct_nb.losses.perceptual import perceptual_loss  # shared with the baselines' PerceptualLoss
from ldct_nb.losses.ssim import OFFICIAL_FORM, ssim
from ldct_nb.models.mac_net import MACNet, check_input
from ldct_nb.validate import check_image_batch

BACKGROUND_THRESHOLD = 0.05  # on the [0, 1] image over [-1000, 2000] HU: about -850 HU
TERMS = ("mse", "ssim", "perceptual", "global", "local")


@dataclass(frozen=True)
class SamplingSizes:
    """Samples per image: patch anchors (H/16 grid), pixel queries, hard negatives."""

    n_anchors: int
    n_queries: int
    n_negatives: int


SAMPLING_PRESETS: dict[str, SamplingSizes] = {
    "mayo2016": SamplingSizes(n_anchors=32, n_queries=512, n_negatives=24),
    "mayo2020": SamplingSizes(n_anchors=16, n_queries=256, n_negatives=24),
}

PRESETS: dict[str, dict] = {
    # L = L_global + L_local + 10 (L_MSE + L_SSIM); tau not stated (0.07 chosen); one local MLP
    # (the paper's "concatenate ... and map them through a two-layer MLP"); scikit-image SSIM;
    # the background filter of sec. 3.1 ("a binary function to filter the background").
    "paper": dict(
        mse_weight=10.0, ssim_weight=10.0, perceptual_weight=0.0, global_weight=1.0, local_weight=1.0,
        mac_global_weight=1.0, mac_local_weight=1.0, tau=TAU, background_threshold=BACKGROUND_THRESHOLD,
        local_target="online", ssim_form="skimage",
    ),
    # 100 MSE + 10 (1 - SSIM) + 0.1 (0.5 BYOL + 0.5 InfoNCE); tau 1; positives and negatives of the
    # pixel module through the EMA copy of the local MLP (mlp2 of netProjection_target, no_grad);
    # kornia SSIM (reflect padding, map clamped to [0, 1]). The official code's background filter
    # (BinarizedF at 0.05 on the NDCT) exists but is dead code in the released command
    # (local_variance off), hence background_threshold=None.
    "official": dict(
        mse_weight=100.0, ssim_weight=10.0, perceptual_weight=0.0, global_weight=0.05, local_weight=0.05,
        mac_global_weight=0.5, mac_local_weight=0.5, tau=1.0, background_threshold=None,
        local_target="ema", ssim_form="official",
    ),
}
"""The two presets. Where both differ from the official code on purpose:

* anchors and queries are drawn **per image**; the official ``PatchSampleF`` draws one set of
  positions and uses it for every image of the batch (its own comment: "we use the same
  patch_ids for multiple images in the batch");
* candidate negatives never wrap around the image border (the official flat indices do);
* losses are means over anchors / queries (the paper writes sums; see the gradient table of
  notebook 03 for what that does to the balance of the terms).
"""
MAC_OPTIMIZERS: dict[str, dict] = {
    # the paper names no optimiser for MAC-Net; we use the denoiser's (AdamW, sec. 3.1)
    "paper": dict(name="adamw", lr=1e-4, betas=(0.9, 0.99), weight_decay=1e-9),
    # official: torch.optim.SGD over the online U-Net, projection head and predictor, lr = opt.lr
    "official": dict(name="sgd", lr=2e-4),
}
"""MAC-Net's optimiser per preset (the MAC-Net step of the alternating iteration)."""
LOCAL_TARGETS = ("online", "ema")
SSIM_FORMS = {"skimage": {"padding": "valid", "clamp": False}, "official": dict(OFFICIAL_FORM)}

# Table 2 rows: the terms switched on (others get weight 0).
ABLATIONS: dict[str, tuple[str, ...]] = {
    "mse": ("mse",),
    "mse+perceptual": ("mse", "perceptual"),
    "mse+ssim": ("mse", "ssim"),
    "mse+ssim+global": ("mse", "ssim", "global"),
    "mse+ssim+local": ("mse", "ssim", "local"),
    "full": ("mse", "ssim", "global", "local"),
}


def background_filter(ndct: torch.Tensor, threshold: float | None = BACKGROUND_THRESHOLD) -> torch.Tensor:
    """The paper's "binary function" filtering the background: (B, H, W) bool,
    True inside the body, where the NDCT intensity exceeds ``threshold``.

    ``ndct`` is (B, 1, H, W) on the [0, 1] scale of [-1000, 2000] HU, so the
    default 0.05 is about -850 HU (air is 0). ``threshold=None`` keeps every pixel.
    """
    if not isinstance(ndct, torch.Tensor) or ndct.ndim != 4 or ndct.shape[1] != 1:
        shape = tuple(ndct.shape) if isinstance(ndct, torch.Tensor) else type(ndct).__name__
        raise ParameterError(f"ndct must be a (B, 1, H, W) tensor, got {shape}")
    if threshold is None:
        return torch.ones_like(ndct[:, 0], dtype=torch.bool)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise ParameterError(f"background_threshold must be a number or None, got {threshold!r}")
    return ndct[:, 0] > float(threshold)


def _split_generator(
    generator: torch.Generator | None, device: torch.device
) -> tuple[torch.Generator | None, torch.Generator | None]:
    """Two generators on ``device`` seeded from ``generator``: one for the patch
    anchors, one for the pixel queries, so each module draws the same samples
    whichever terms are computed. None stays None (global random stream)."""
    if generator is None:
        return None, None
    seeds = torch.randint(0, 2**62, (2,), generator=generator, device=generator.device).tolist()
    return tuple(torch.Generator(device=device).manual_seed(int(s)) for s in seeds)


@contextmanager
def frozen(parameters: Sequence[nn.Parameter]) -> Iterator[None]:
    """Turn ``requires_grad`` off for ``parameters`` inside the block, then restore it.

    Gradients still flow through the module to its inputs."""
    params = list(parameters)
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)


@dataclass
class AsconLossOutput:
    """A loss value with its parts.

    ``total``: the weighted sum (differentiable). ``terms``: unweighted terms
    (tensors, differentiable). ``weights``: the weight of each term in ``total``.
    ``patch`` / ``pixel``: the samples drawn by the two MAC-Net modules.
    """

    total: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    patch: PatchSample | None = None
    pixel: PixelSample | None = None

    def as_dict(self) -> dict[str, float]:
        """Plain floats: ``total`` and every term."""
        return {"total": float(self.total.detach()), **{k: float(v.detach()) for k, v in self.terms.items()}}

    def __repr__(self) -> str:
        parts = ", ".join(f"{k} {float(v.detach()):.4g} (x{self.weights.get(k, 0):g})" for k, v in self.terms.items())
        return f"AsconLossOutput(total {float(self.total.detach()):.4g}: {parts})"


def _check_weight(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ParameterError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def _check_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParameterError(f"{name} must be an int >= 1, got {value!r}")
    return value


class AsconLoss(nn.Module):
    """ASCON's loss for the denoiser and for MAC-Net (sec. 2.3-2.4).

    Args:
        mac_net: the :class:`~ldct_nb.models.mac_net.MACNet`; required when a
            global or local weight is > 0.
        mse_weight, ssim_weight, perceptual_weight, global_weight, local_weight:
            weights of the denoiser loss terms (paper: 10, 10, 0, 1, 1).
        mac_global_weight, mac_local_weight: weights of the MAC-Net update
            loss (paper 1, 1; official 0.5, 0.5).
        n_anchors, n_positives: patch module anchors per image and top-k (32, 4).
        n_queries, n_negatives: pixel module queries per image and hard negatives (512, 24).
        negative_window, negative_distance: candidate negatives within
            ``negative_window`` = m = 7 pixels, ``"chebyshev"`` (7 x 7 window,
            official code; default) or ``"euclidean"`` (0 < d < 7, the paper's words).
        tau: InfoNCE temperature (0.07; official code: effectively 1).
        background_threshold: the body filter on the [0, 1] NDCT (0.05, about
            -850 HU); None turns it off (official command).
        data_range: intensity range of the images for SSIM (1).
        perceptual_net: feature network of the perceptual term (frozen here).
        local_target: ``"online"`` (paper: one local MLP for query, positive and
            negatives) or ``"ema"`` (official: positive and negatives through
            MAC-Net's EMA ``target_local_mlp`` under ``no_grad``).
        ssim_form: ``"skimage"`` (valid region, no clamp) or ``"official"``
            (reflect padding, map clamped to [0, 1]); see :mod:`ldct_nb.losses.ssim`.
        positive_matching: ``"neighbour"`` (top-4 of the 8 neighbours by cosine
            similarity, the paper) or ``"random"`` (Table S2's ablation).
        negative_sampling: ``"hard"`` (the 24 most similar candidates, the
            paper) or ``"random"`` (Table S2's ablation).

    Images are (B, 1, H, W) on the [0, 1] scale, H and W divisible by 16.
    Use :func:`ascon_loss` to build one from presets.
    """

    def __init__(
        self,
        mac_net: MACNet | None = None,
        *,
        mse_weight: float = 10.0,
        ssim_weight: float = 10.0,
        perceptual_weight: float = 0.0,
        global_weight: float = 1.0,
        local_weight: float = 1.0,
        mac_global_weight: float = 1.0,
        mac_local_weight: float = 1.0,
        n_anchors: int = 32,
        n_positives: int = 4,
        n_queries: int = 512,
        n_negatives: int = 24,
        negative_window: int = 7,
        negative_distance: str = "chebyshev",
        tau: float = TAU,
        background_threshold: float | None = BACKGROUND_THRESHOLD,
        data_range: float = 1.0,
        perceptual_net: nn.Module | None = None,
        local_target: str = "online",
        ssim_form: str = "skimage",
        positive_matching: str = "neighbour",
        negative_sampling: str = "hard",
    ) -> None:
        super().__init__()
        if positive_matching not in MATCHINGS:
            raise ParameterError(f"positive_matching must be one of {MATCHINGS}, got {positive_matching!r}")
        if negative_sampling not in NEGATIVE_SAMPLINGS:
            raise ParameterError(f"negative_sampling must be one of {NEGATIVE_SAMPLINGS}, got {negative_sampling!r}")
        self.positive_matching, self.negative_sampling = positive_matching, negative_sampling
        if local_target not in LOCAL_TARGETS:
            raise ParameterError(f"local_target must be one of {LOCAL_TARGETS}, got {local_target!r}")
        if ssim_form not in SSIM_FORMS:
            raise ParameterError(f"ssim_form must be one of {tuple(SSIM_FORMS)}, got {ssim_form!r}")
        self.local_target, self.ssim_form = local_target, ssim_form
        self.weights = {
            "mse": _check_weight("mse_weight", mse_weight),
            "ssim": _check_weight("ssim_weight", ssim_weight),
            "perceptual": _check_weight("perceptual_weight", perceptual_weight),
            "global": _check_weight("global_weight", global_weight),
            "local": _check_weight("local_weight", local_weight),
        }
        self.mac_weights = {
            "global": _check_weight("mac_global_weight", mac_global_weight),
            "local": _check_weight("mac_local_weight", mac_local_weight),
        }
        needs_mac = self.weights["global"] > 0 or self.weights["local"] > 0
        if mac_net is not None and not isinstance(mac_net, MACNet):
            raise ParameterError(f"mac_net must be a MACNet or None, got {type(mac_net).__name__}")
        if needs_mac and mac_net is None:
            raise ParameterError(
                "mac_net is None but global_weight or local_weight is > 0: pass a MACNet "
                "(ldct_nb.models.mac_net.mac_net()) or set both weights to 0"
            )
        if self.weights["perceptual"] > 0 and perceptual_net is None:
            raise ParameterError(
                "perceptual_weight > 0 needs a feature network: pass perceptual_net (an nn.Module mapping a "
                "(B, 1, H, W) image to features, e.g. a VGG built from a local weights file); none was given"
            )
        if perceptual_net is not None and not isinstance(perceptual_net, nn.Module):
            raise ParameterError(f"perceptual_net must be an nn.Module, got {type(perceptual_net).__name__}")
        self.n_anchors = _check_count("n_anchors", n_anchors)
        self.n_positives = _check_count("n_positives", n_positives)
        self.n_queries = _check_count("n_queries", n_queries)
        self.n_negatives = _check_count("n_negatives", n_negatives)
        self.negative_window = _check_count("negative_window", negative_window)
        if negative_distance not in DISTANCES:
            raise ParameterError(f"negative_distance must be one of {', '.join(DISTANCES)}; got {negative_distance!r}")
        self.negative_distance = negative_distance
        if self.n_positives > 8:
            raise ParameterError(f"n_positives must be at most the 8 neighbours of an anchor, got {n_positives}")
        if negative_distance == "chebyshev" and (negative_window < 3 or negative_window % 2 == 0):
            raise ParameterError(
                f"negative_window must be an odd int >= 3 with negative_distance 'chebyshev' (an m x m window), "
                f"got {negative_window}"
            )
        if negative_distance == "euclidean" and negative_window < 2:
            raise ParameterError(f"negative_window must be an int >= 2 with negative_distance 'euclidean', got {negative_window}")
        n_candidates = len(candidate_offsets(negative_window, negative_distance))
        if self.n_negatives > n_candidates:
            raise ParameterError(
                f"n_negatives = {n_negatives} exceeds the {n_candidates} candidates within negative_window = "
                f"{negative_window} ({negative_distance})"
            )
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not tau > 0:
            raise ParameterError(f"tau must be a number > 0, got {tau!r}")
        self.tau = float(tau)
        if background_threshold is not None and (
            isinstance(background_threshold, bool) or not isinstance(background_threshold, (int, float))
        ):
            raise ParameterError(f"background_threshold must be a number or None, got {background_threshold!r}")
        self.background_threshold = background_threshold
        if isinstance(data_range, bool) or not isinstance(data_range, (int, float)) or not data_range > 0:
            raise ParameterError(f"data_range must be a number > 0, got {data_range!r}")
        self.data_range = float(data_range)
        self.mac_net = mac_net
        self.perceptual_net = perceptual_net
        if perceptual_net is not None:
            perceptual_net.requires_grad_(False)
            perceptual_net.eval()

    # ------------------------------------------------------------ terms

    def _check_pair(self, denoised: torch.Tensor, ndct: torch.Tensor) -> None:
        """Both (B, 1, H, W) finite float tensors of one dtype and device on the [0, 1] scale
        (a denoiser's output may stray outside it while training: it is refused only far
        outside, e.g. in HU)."""
        check_image_batch(denoised, "denoised", like=self.mac_net, margin=5.0)
        check_image_batch(ndct, "ndct", like=denoised)
        if denoised.shape != ndct.shape:
            raise ParameterError(f"denoised {tuple(denoised.shape)} and ndct {tuple(ndct.shape)} differ in shape")

    def pixel_terms(self, denoised: torch.Tensor, ndct: torch.Tensor, names: Sequence[str] = ("mse", "ssim")) -> dict[str, torch.Tensor]:
        """Unweighted ``L_MSE``, ``L_SSIM = 1 - SSIM`` and ``L_perceptual`` (those named)."""
        self._check_pair(denoised, ndct)
        out: dict[str, torch.Tensor] = {}
        if "mse" in names:
            out["mse"] = F.mse_loss(denoised, ndct)
        if "ssim" in names:
            out["ssim"] = 1.0 - ssim(denoised, ndct, data_range=self.data_range, **SSIM_FORMS[self.ssim_form])
        if "perceptual" in names:
            if self.perceptual_net is None:
                raise ParameterError("the perceptual term needs perceptual_net (a feature network); none was given")
            out["perceptual"] = perceptual_loss(self.perceptual_net, denoised, ndct)
        return out

    def contrastive_terms(
        self,
        denoised: torch.Tensor,
        ndct: torch.Tensor,
        names: Sequence[str] = ("global", "local"),
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[dict[str, torch.Tensor], PatchSample | None, PixelSample | None]:
        """Unweighted ``L_global`` (eq. 4) and ``L_local`` (eq. 5) (those named),
        with the samples drawn. Online branch on ``denoised``, target on ``ndct``."""
        self._check_pair(denoised, ndct)
        if self.mac_net is None:
            raise ParameterError("the global and local terms need mac_net (a MACNet); none was given")
        check_input(denoised, "denoised")
        net = self.mac_net
        ref = next(net.parameters())
        for name, x in (("denoised", denoised), ("ndct", ndct)):
            if x.dtype != ref.dtype or x.device != ref.device:
                raise ParameterError(
                    f"{name} is {x.dtype} on {x.device} but MAC-Net is {ref.dtype} on {ref.device}: "
                    f"convert it with .to(device, dtype) first"
                )
        f_g_on, f_l_on = net.online_features(denoised)
        f_g_tg, f_l_tg = net.target_features(ndct)
        body = background_filter(ndct, self.background_threshold)
        g_patch, g_pixel = _split_generator(generator, ndct.device)
        out: dict[str, torch.Tensor] = {}
        patch = pixel = None
        if "global" in names:
            out["global"], patch = patch_noncontrastive_loss(
                f_g_on, f_g_tg,
                online_projector=net.online.projector, predictor=net.predictor, target_projector=net.target.projector,
                n_anchors=self.n_anchors, k=self.n_positives, matching=self.positive_matching,
                anchor_mask=grid_mask(body, tuple(f_g_tg.shape[-2:])), generator=g_patch,
            )
        if "local" in names:
            out["local"], pixel = pixel_contrastive_loss(
                f_l_on, f_l_tg, local_mlp=net.local_mlp,
                target_mlp=net.target_local_mlp if self.local_target == "ema" else None,
                n_queries=self.n_queries, n_negatives=self.n_negatives,
                m=self.negative_window, distance=self.negative_distance, tau=self.tau,
                query_mask=body, generator=g_pixel, negative_sampling=self.negative_sampling,
            )
        return out, patch, pixel

    def terms(
        self, denoised: torch.Tensor, ndct: torch.Tensor, names: Sequence[str] = TERMS, *, generator: torch.Generator | None = None
    ) -> AsconLossOutput:
        """Every named term, unweighted, whatever the weights (for tables and figures).
        ``total`` is the denoiser loss of those terms with the configured weights."""
        unknown = [n for n in names if n not in TERMS]
        if unknown:
            raise ParameterError(f"unknown loss terms {unknown}; known: {', '.join(TERMS)}")
        names = [n for n in names if n != "perceptual" or self.perceptual_net is not None]
        names = [n for n in names if n not in ("global", "local") or self.mac_net is not None]
        values = self.pixel_terms(denoised, ndct, [n for n in names if n in ("mse", "ssim", "perceptual")])
        patch = pixel = None
        if any(n in names for n in ("global", "local")):
            mac, patch, pixel = self.contrastive_terms(
                denoised, ndct, [n for n in names if n in ("global", "local")], generator=generator
            )
            values.update(mac)
        ordered = {n: values[n] for n in TERMS if n in values}
        total = sum(self.weights[n] * v for n, v in ordered.items())
        if not ordered:  # no term requested or all weights 0: a tensor, so .backward() and as_dict() work
            total = torch.zeros((), device=denoised.device)
        return AsconLossOutput(total, ordered, dict(self.weights), patch, pixel)

    # ------------------------------------------------------------ the two training losses

    def denoiser_loss(self, denoised: torch.Tensor, ndct: torch.Tensor, *, generator: torch.Generator | None = None) -> AsconLossOutput:
        """The denoiser's loss: the weighted sum of the terms with weight > 0.

        MAC-Net is frozen (its parameters collect no gradient) but the loss is
        differentiable with respect to ``denoised``."""
        active = [n for n in TERMS if self.weights[n] > 0]
        params = list(self.mac_net.parameters()) if self.mac_net is not None else []
        with frozen(params):
            out = self.terms(denoised, ndct, active, generator=generator)
        return out

    def forward(self, denoised: torch.Tensor, ndct: torch.Tensor, *, generator: torch.Generator | None = None) -> AsconLossOutput:
        return self.denoiser_loss(denoised, ndct, generator=generator)

    def mac_loss(self, denoised: torch.Tensor, ndct: torch.Tensor, *, generator: torch.Generator | None = None) -> AsconLossOutput:
        """MAC-Net's loss ``w_g L_global + w_l L_local`` on the detached denoised
        image: its gradient reaches only the online branch, predictor and local MLP."""
        names = [n for n in ("global", "local") if self.mac_weights[n] > 0]
        terms, patch, pixel = self.contrastive_terms(denoised.detach(), ndct, names, generator=generator)
        total = sum(self.mac_weights[n] * v for n, v in terms.items())
        if not terms:
            total = torch.zeros((), device=ndct.device)
        return AsconLossOutput(total, terms, dict(self.mac_weights), patch, pixel)

    def update_target(self) -> None:
        """One EMA step of MAC-Net's target (call after the MAC-Net optimiser step)."""
        if self.mac_net is None:
            raise ParameterError("update_target needs mac_net (a MACNet); none was given")
        self.mac_net.update_target()

    def extra_repr(self) -> str:
        w = ", ".join(f"{k} {v:g}" for k, v in self.weights.items() if v > 0)
        mw = ", ".join(f"{k} {v:g}" for k, v in self.mac_weights.items())
        return (
            f"denoiser: {w}; mac-net: {mw}; anchors {self.n_anchors} (top-{self.n_positives}), "
            f"queries {self.n_queries}, negatives {self.n_negatives} within m {self.negative_window} "
            f"({self.negative_distance}), tau {self.tau:g}, background threshold {self.background_threshold}, "
            f"local target {self.local_target}, ssim {self.ssim_form}, positives {self.positive_matching}, "
            f"negatives {self.negative_sampling}"
        )


def term_gradients(
    loss: AsconLoss, denoised: torch.Tensor, ndct: torch.Tensor, *, seed: int = 0
) -> dict[str, torch.Tensor]:
    """``dL/d denoised`` (B, 1, H, W, signed) of every weighted term with weight > 0
    and of the total denoiser loss, MAC-Net frozen; the same samples (from
    ``seed``) in every term, so the total's gradient is the sum of the terms'."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"seed must be an int >= 0, got {seed!r}")
    active = [n for n in TERMS if loss.weights[n] > 0]
    params = list(loss.mac_net.parameters()) if loss.mac_net is not None else []
    grads: dict[str, torch.Tensor] = {}
    with frozen(params):
        for name in [*active, "total"]:
            x = denoised.detach().clone().requires_grad_(True)
            gen = torch.Generator(device=x.device).manual_seed(seed)
            res = loss.terms(x, ndct, active if name == "total" else (name,), generator=gen)
            value = res.total if name == "total" else loss.weights[name] * res.terms[name]
            (grads[name],) = torch.autograd.grad(value, x)
    return grads


def gradient_maps(
    loss: AsconLoss, denoised: torch.Tensor, ndct: torch.Tensor, *, seed: int = 0
) -> dict[str, torch.Tensor]:
    """``|dL/d denoised|`` (B, H, W) of :func:`term_gradients`."""
    return {name: g.abs()[:, 0] for name, g in term_gradients(loss, denoised, ndct, seed=seed).items()}


_ASCON_LOSS_KEYWORDS = tuple(
    name for name in inspect.signature(AsconLoss.__init__).parameters if name not in ("self", "mac_net", "perceptual_net")
)


def ascon_loss(
    preset: str = "paper",
    *,
    sampling: str = "mayo2016",
    ablation: str = "full",
    mac_net: MACNet | None = None,
    perceptual_net: nn.Module | None = None,
    **overrides,
) -> AsconLoss:
    """Build an :class:`AsconLoss` from presets.

    Args:
        preset: ``"paper"`` (sec. 2.4) or ``"official"`` (the released code); see :data:`PRESETS`.
        sampling: ``"mayo2016"`` (32 anchors, 512 queries, 24 negatives) or
            ``"mayo2020"`` (16, 256, 24); see :data:`SAMPLING_PRESETS`.
        ablation: a Table 2 row (:data:`ABLATIONS`): the terms not listed get
            weight 0. In ``"mse+perceptual"`` the perceptual weight equals the
            MSE weight (lambda) unless ``perceptual_weight`` is given.
        mac_net, perceptual_net: the networks (see :class:`AsconLoss`).
        overrides: any other :class:`AsconLoss` keyword, applied last.
    """
    if preset not in PRESETS:
        raise ParameterError(f"preset must be one of {', '.join(PRESETS)}; got {preset!r}")
    if sampling not in SAMPLING_PRESETS:
        raise ParameterError(f"sampling must be one of {', '.join(SAMPLING_PRESETS)}; got {sampling!r}")
    if ablation not in ABLATIONS:
        raise ParameterError(f"ablation must be one of {', '.join(ABLATIONS)}; got {ablation!r}")
    kwargs = dict(PRESETS[preset])
    sizes = SAMPLING_PRESETS[sampling]
    kwargs.update(n_anchors=sizes.n_anchors, n_queries=sizes.n_queries, n_negatives=sizes.n_negatives)
    on = ABLATIONS[ablation]
    for term in TERMS:
        if term not in on:
            kwargs[f"{term}_weight"] = 0.0
    if "perceptual" in on:
        kwargs["perceptual_weight"] = kwargs["mse_weight"]
    unknown = sorted(set(overrides) - set(_ASCON_LOSS_KEYWORDS))
    if unknown:
        raise ParameterError(
            f"unknown AsconLoss keyword(s) {unknown} in ascon_loss(); known: {', '.join(_ASCON_LOSS_KEYWORDS)}"
        )
    kwargs.update(overrides)
    return AsconLoss(mac_net, perceptual_net=perceptual_net, **kwargs)


__all__ = [
    "ABLATIONS",
    "BACKGROUND_THRESHOLD",
    "LOCAL_TARGETS",
    "MAC_OPTIMIZERS",
    "PRESETS",
    "SSIM_FORMS",
    "SAMPLING_PRESETS",
    "TERMS",
    "AsconLoss",
    "AsconLossOutput",
    "SamplingSizes",
    "ascon_loss",
    "background_filter",
    "frozen",
    "gradient_maps",
    "term_gradients",
    "perceptual_loss",
]
