"""The training configuration: one run of one method on one seed.

A config is a YAML file or a dict with these keys (only ``method`` is
required)::

    method: ascon            # a registered method (ldct_nb.train.methods) or "ascon"
    preset: paper            # the method's preset (paper | official | lidnet ...)
    table: table1            # the table the run belongs to (its checkpoint folder)
    name: ascon              # the run's folder name (default: the method)
    seed: 0
    steps: 1000              # optimisation steps (iterations)
    batch_size: 4            # global batch (split across processes under torchrun)
    patch_size: 64           # square training patches; null for whole slices
    model: {}                # generator keywords, e.g. {stem: 8, widths: [16, 32, 64]}
    method_options: {}       # build_method keywords of a registered method (loss weights, critic width)
    ascon:                   # only for method: ascon
      denoiser: esau_net     # any registered generator (Table S1: red_cnn, unet)
      ablation: full         # a Table 2 row (ldct_nb.losses.ascon_loss.ABLATIONS)
      sampling: mayo2016     # sample counts (mayo2016 | mayo2020)
      mac_width: 1.0         # MAC-Net width multiplier
      mac_heads: {}          # MAC-Net head sizes (proj_hidden 1024, proj_dim 256, local_hidden 256, local_dim K = 256)
      optimisation: alternating   # or joint (Table S2)
      loss: {}               # AsconLoss keywords (positive_matching: random, negative_sampling: random, ...)
    lr: null                 # override the recipe's generator learning rate
    schedule: cosine         # cosine (to lr_floor over the run) or constant
    lr_floor: 1.0e-6
    grad_clip: null          # max gradient norm per network, or null
    val_every: 100           # validation (PSNR on the validation split) every this many steps
    val_slices: null         # validation slices (null: all)
    checkpoint_every: 100    # last.pt every this many steps
    log_every: 10            # metrics rows averaged over this many steps
    augment: true
    amp: false               # bf16 autocast on CUDA
    compile: false           # torch.compile the denoiser on CUDA
    device: auto
    train_split: train
    val_split: val           # never the test split (refused); null: no validation (best.pt is not written)
    perceptual: {kind: ndct_feature_net, steps: 200, width: 16}   # or {kind: vgg, weights: PATH}

Unknown keys, wrong types and impossible values are refused with a
:class:`~ldct_nb.errors.ParameterError` naming the key.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ldct_nb.errors import ParameterError

__all__ = ["ASCON", "ASCON_DEFAULTS", "TrainConfig", "load_config", "read_config"]

ASCON = "ascon"
ASCON_DEFAULTS: dict[str, Any] = {
    "denoiser": "esau_net",
    "ablation": "full",
    "sampling": "mayo2016",
    "mac_width": 1.0,
    "mac_heads": {},
    "optimisation": "alternating",
    "loss": {},
}
PERCEPTUAL_DEFAULTS: dict[str, Any] = {"kind": "ndct_feature_net", "steps": 200, "width": 16, "weights": None}
# keys whose change does not change what is trained (a resumed run may differ in them)
RUNTIME_KEYS = ("val_every", "val_slices", "checkpoint_every", "log_every", "device", "name", "table")


@dataclass(frozen=True)
class TrainConfig:
    """One training run (see the module docstring for every key)."""

    method: str
    preset: str = "paper"
    table: str = "table1"
    name: str | None = None
    seed: int = 0
    steps: int = 1000
    batch_size: int = 4
    patch_size: int | None = 64
    model: dict = field(default_factory=dict)
    method_options: dict = field(default_factory=dict)
    ascon: dict = field(default_factory=dict)
    lr: float | None = None
    schedule: str = "cosine"
    lr_floor: float = 1e-6
    grad_clip: float | None = None
    val_every: int = 100
    val_slices: int | None = None
    checkpoint_every: int = 100
    log_every: int = 10
    augment: bool = True
    amp: bool = False
    compile: bool = False
    device: str = "auto"
    train_split: str = "train"
    val_split: str | None = "val"
    perceptual: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def run_name(self) -> str:
        return self.name or self.method

    @property
    def is_ascon(self) -> bool:
        return self.method == ASCON

    @property
    def ascon_options(self) -> dict[str, Any]:
        """``ascon`` with the defaults filled in."""
        return {**ASCON_DEFAULTS, **self.ascon}

    @property
    def perceptual_options(self) -> dict[str, Any]:
        return {**PERCEPTUAL_DEFAULTS, **self.perceptual}

    @property
    def denoiser_name(self) -> str:
        """The registered generator this run trains."""
        return self.ascon_options["denoiser"] if self.is_ascon else self.method

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def fingerprint(self) -> str:
        """sha256 of what decides the trained weights (everything but :data:`RUNTIME_KEYS`)."""
        d = {k: v for k, v in self.to_dict().items() if k not in RUNTIME_KEYS}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def differences(self, other: TrainConfig) -> list[str]:
        """Keys (outside :data:`RUNTIME_KEYS`) whose values differ."""
        a, b = self.to_dict(), other.to_dict()
        return [k for k in a if k not in RUNTIME_KEYS and a[k] != b[k]]

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def read_config(config: Mapping[str, Any] | str | os.PathLike[str], cls: type, label: str) -> tuple[dict[str, Any], str]:
    """The keys of a config given as a dict or a YAML file, checked against the fields of
    the dataclass ``cls``: returns ``(values, source)``, ``source`` naming the file (or
    "config") for messages. A missing file, invalid YAML, a non-mapping and unknown keys
    are refused naming them."""
    source = "config"
    if isinstance(config, (str, os.PathLike)):
        path = Path(config)
        if not path.is_file():
            raise ParameterError(f"{label} config {str(path)!r} does not exist")
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ParameterError(f"{label} config {str(path)!r} is not valid YAML: {exc}") from exc
        source = str(path)
    if not isinstance(config, Mapping):
        raise ParameterError(f"{source}: a {label} config must be a mapping of keys to values, got {type(config).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ParameterError(f"{source}: unknown key(s) {unknown}; valid keys: {sorted(known)}")
    return dict(config), source


def load_config(config: TrainConfig | Mapping[str, Any] | str | os.PathLike[str]) -> TrainConfig:
    """A :class:`TrainConfig` from itself, a dict or a YAML file (refusing unknown keys)."""
    if isinstance(config, TrainConfig):
        return config
    config, source = read_config(config, TrainConfig, "training")
    if "method" not in config:
        raise ParameterError(f"{source}: the key 'method' is required (a registered method or 'ascon')")
    values = {k: _numeric(k, v) for k, v in config.items()}
    for key in ("model", "method_options", "ascon", "perceptual"):
        if key in values and values[key] is None:
            values[key] = {}
    try:
        return TrainConfig(**values)
    except ParameterError as exc:
        raise ParameterError(f"{source}: {exc}") from None


# ----------------------------------------------------------------------------- validation

_FLOATS = ("lr", "lr_floor", "grad_clip")


def _numeric(key: str, value):
    """YAML 1.1 reads ``1e-4`` as a string: convert the float keys' numeric strings."""
    if key in _FLOATS and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ParameterError(f"{key} must be a number, got {value!r}") from None
    return value


def _int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ParameterError(f"{name} must be an int >= {minimum}, got {value!r}")


def _validate(c: TrainConfig) -> None:
    from ldct_nb.losses.ascon_loss import ABLATIONS, SAMPLING_PRESETS, _ASCON_LOSS_KEYWORDS
    from ldct_nb.models import available, presets
    from ldct_nb.train.methods import METHODS

    if c.val_split is not None and (not isinstance(c.val_split, str) or not c.val_split):
        raise ParameterError(f"val_split must be a split name or null, got {c.val_split!r}")
    for key in ("method", "preset", "table", "schedule", "device", "train_split"):
        if not isinstance(getattr(c, key), str) or not getattr(c, key):
            raise ParameterError(f"{key} must be a non-empty string, got {getattr(c, key)!r}")
    if c.name is not None and (not isinstance(c.name, str) or not c.name or "/" in c.name):
        raise ParameterError(f"name must be a folder name (no '/'), got {c.name!r}")
    if "/" in c.table:
        raise ParameterError(f"table must be a folder name (no '/'), got {c.table!r}")
    valid = sorted(METHODS) + [ASCON]
    if c.method not in valid:
        raise ParameterError(f"unknown method {c.method!r}; valid methods: {valid}")
    _int("seed", c.seed, 0)
    _int("steps", c.steps, 1)
    _int("batch_size", c.batch_size, 1)
    if c.patch_size is not None:
        _int("patch_size", c.patch_size, 8)
    for key in ("val_every", "checkpoint_every", "log_every"):
        _int(key, getattr(c, key), 1)
    if c.val_slices is not None:
        _int("val_slices", c.val_slices, 1)
    for key in ("model", "method_options", "ascon", "perceptual"):
        if not isinstance(getattr(c, key), dict):
            raise ParameterError(f"{key} must be a mapping, got {getattr(c, key)!r}")
    for key in _FLOATS:
        v = getattr(c, key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0):
            raise ParameterError(f"{key} must be a number > 0{' or null' if key != 'lr_floor' else ''}, got {v!r}")
    if c.lr_floor is None:
        raise ParameterError("lr_floor must be a number > 0")
    if c.schedule not in ("cosine", "constant"):
        raise ParameterError(f"schedule must be 'cosine' or 'constant', got {c.schedule!r}")
    for key in ("augment", "amp", "compile"):
        if not isinstance(getattr(c, key), bool):
            raise ParameterError(f"{key} must be true or false, got {getattr(c, key)!r}")
    if c.val_split == "test" or c.train_split == "test":
        raise ParameterError(
            "train_split and val_split must not be the test split: the test split is kept for the evaluation "
            "notebook (the official ASCON code validates on its test set; this project does not)"
        )
    if c.val_split == c.train_split:
        raise ParameterError(f"val_split must differ from train_split, both are {c.val_split!r}")
    if c.is_ascon:
        unknown = sorted(set(c.ascon) - set(ASCON_DEFAULTS))
        if unknown:
            raise ParameterError(f"unknown ascon key(s) {unknown}; valid: {sorted(ASCON_DEFAULTS)}")
        a = c.ascon_options
        if a["denoiser"] not in available():
            raise ParameterError(f"ascon.denoiser must be a registered model {available()}, got {a['denoiser']!r}")
        if a["ablation"] not in ABLATIONS:
            raise ParameterError(f"ascon.ablation must be one of {list(ABLATIONS)}, got {a['ablation']!r}")
        if a["sampling"] not in SAMPLING_PRESETS:
            raise ParameterError(f"ascon.sampling must be one of {list(SAMPLING_PRESETS)}, got {a['sampling']!r}")
        if a["optimisation"] not in ("alternating", "joint"):
            raise ParameterError(f"ascon.optimisation must be 'alternating' or 'joint', got {a['optimisation']!r}")
        w = a["mac_width"]
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w <= 4:
            raise ParameterError(f"ascon.mac_width must be a number in (0, 4], got {w!r}")
        heads = a["mac_heads"]
        if not isinstance(heads, dict) or set(heads) - {"proj_hidden", "proj_dim", "local_hidden", "local_dim"}:
            raise ParameterError(f"ascon.mac_heads must map proj_hidden, proj_dim, local_hidden, local_dim to sizes, got {heads!r}")
        for key, value in heads.items():
            _int(f"ascon.mac_heads.{key}", value, 1)
        if not isinstance(a["loss"], dict):
            raise ParameterError(f"ascon.loss must be a mapping of AsconLoss keywords, got {a['loss']!r}")
        bad = sorted(set(a["loss"]) - set(_ASCON_LOSS_KEYWORDS))
        if bad:
            raise ParameterError(f"unknown ascon.loss keyword(s) {bad}; valid: {list(_ASCON_LOSS_KEYWORDS)}")
        if c.preset not in ("paper", "official"):
            raise ParameterError(f"preset must be 'paper' or 'official' for ascon, got {c.preset!r}")
        if c.patch_size is not None and c.patch_size % 16:
            raise ParameterError(f"patch_size must be a multiple of 16 for ascon (MAC-Net's four down-samplings), "
                                 f"got {c.patch_size}")
    else:
        if c.ascon:
            raise ParameterError(f"the ascon options apply to method 'ascon' only, not to {c.method!r}")
        if c.preset not in presets(c.method):
            raise ParameterError(f"unknown preset {c.preset!r} for {c.method!r}; valid presets: {presets(c.method)}")
    unknown = sorted(set(c.perceptual) - set(PERCEPTUAL_DEFAULTS))
    if unknown:
        raise ParameterError(f"unknown perceptual key(s) {unknown}; valid: {sorted(PERCEPTUAL_DEFAULTS)}")
    if c.perceptual_options["kind"] not in ("ndct_feature_net", "vgg"):
        raise ParameterError(f"perceptual.kind must be 'ndct_feature_net' or 'vgg', got {c.perceptual_options['kind']!r}")
    if c.perceptual_options["kind"] == "vgg" and not c.perceptual_options["weights"]:
        raise ParameterError("perceptual.kind 'vgg' needs perceptual.weights: the path of your VGG-19 ImageNet weights")
