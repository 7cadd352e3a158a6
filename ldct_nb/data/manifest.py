"""Data manifests: one YAML file per data set, loaded and validated.

A manifest says where a data set comes from (``source``), where it lies on the
user's disk (``root_env`` plus ``layout`` globs), how it is split into
patients (``splits``), how it is normalised (``hu_window``) and which settings
the paper used with it (``paper_settings``). The project never downloads real
CT data: the user obtains it under its own terms and points the manifest at it
with ``load_manifest(name, data_root=...)`` or the environment variable named
by ``root_env``. The synthetic manifest describes the embedded benchmark,
which is generated on the spot and has no files at all.

Shipped manifests live in ``data_manifests/`` at the repository root
(:data:`MANIFEST_DIR`); a path to any YAML file with the same schema is
accepted as well.

Schema (version 1)
------------------
Fields common to every kind::

    schema_version: 1                  # must be 1
    name: mayo2016                     # short identifier
    title: "..."                       # human-readable title
    kind: paired_dicom                 # synthetic | paired_dicom | detection
    paper: ascon                       # ascon | lidnet | both
    source: {url: ..., terms: ..., citation: ...}   # where / under which terms
    hu_window: [-1000, 2000]           # normalisation window in HU, low < high
    display_window: [-160, 240]        # display window in HU, low < high
    notes: "..."                       # optional free text
    dataset: {...}                     # optional free-form facts (anatomy, dose, ...)
    paper_settings: {...}              # optional free-form settings the paper used
    checksums: {rel/path: <sha256>}    # optional; paths relative to the data root

``kind: paired_dicom`` (Mayo-2016, Mayo-2020) adds::

    root_env: LDCT_MAYO2016_ROOT       # env variable holding the data root
    image_size: 512                    # pixels across
    slice_thickness_mm: 1.0            # optional, number or null (unknown)
    slice_interval_mm: 1.0             # optional, number, [low, high] or null
    train_patch_size: 256              # optional, training patch size in pixels
    layout:                            # globs relative to the root; {patient} substituted
      ndct: "**/{patient}/full_1mm/*.IMA"   # ** = any number of folders (also none)
      ldct: "**/{patient}/quarter_1mm/*.IMA"
      case_sensitive: false            # optional (default true): match names whatever their case
    splits: {train: [L067, ...], test: [L333, L506]}   # non-empty patient lists
    expected_counts: {train: 4800, test: 1136}          # what the paper reports per split
    expected_slices: {test: 580}       # optional: slices per split when expected_counts
                                       # counts something else (Mayo-2020: patches)
    variants:                          # optional: alternatives, load_manifest(..., variant="3mm")
      3mm: {layout: {...}, slice_thickness_mm: 3.0, expected_counts: {}}

The data stage checks the slices found on disk against ``expected_slices``
(else ``expected_counts``; an empty mapping checks nothing) and refuses a
mismatch naming the split, the counts and every patient's count, unless
``allow_partial`` accepts fewer slices; globs that give the NDCT and LDCT
roles the same files are refused.

``kind: detection`` (PE-CT, L-CT-A, L-CT-G; NDCT + boxes, the LDCT images are
simulated by :mod:`ldct_nb.data.simulate`) adds ``root_env``, ``image_size``,
the optional slice fields, ``expected_counts`` and::

    splits: {train: [], test: []}      # patient lists; empty = taken from the CSV
    annotations:
      file: annotations.csv            # relative to the data root
      format: csv                      # only csv
    simulation:
      n0: 3000                         # incident photons (see n0_unit): the N0 used
      n0_unit: "..."                   # what N0 counts, in words
      filter_name: cosine              # optional FBP filter (scikit-image iradon names; default ramp)
      filter_cutoff: null              # optional cut-off, fraction of Nyquist
      n0_paper: 3000                   # optional: the paper's N0 when n0 is a calibrated stand-in
      noise_target_hu: 66.5            # optional: the noise n0 was calibrated to (water cylinder)
      noise_cylinder_mm: 250           # optional: that cylinder's diameter (default 250)
      noise_source: "..."              # optional: where the noise level comes from

The annotation CSV has a header with (at least) the columns
``image,x1,y1,x2,y2,label,split,patient``: ``image`` is a DICOM path relative
to the data root, the box is ``x1,y1,x2,y2`` in pixel coordinates (x = column,
y = row, x2 > x1, y2 > y1, inside the image), ``label`` an integer class
(1 = lesion), one row per box. An image without lesion may be listed with the
four coordinates and the label empty (or label 0). ``split`` names a split of
the manifest; ``patient`` the patient id (a patient may appear in one split
only). When the manifest's patient lists are empty, the CSV's ``split`` column
defines the split; otherwise the CSV must agree with them.

``kind: synthetic`` has no root, layout or splits; it adds::

    generator:
      kind: abdomen                    # abdomen | chest
      lesion_kind: metastasis          # optional, one of ldct_nb.data.phantom.LESION_KINDS[kind]
      image_size: 256
      fov_mm: 360
      counts: {train: 64, val: 8, test: 16}   # phantoms per split
      seed: 0
      split_seeds: {train: 1000, val: 2000, test: 3000}
    dose:
      n0_full: 1.0e5                   # photons per detector bin per view, full dose; or null and ...
      noise_target_hu: null            # ... the full-dose noise (HU) it must give (ldct_nb.data.dose)
      dose_fraction: 0.25              # low dose = dose_fraction * n0_full; or null and ...
      ldct_noise_target_hu: null       # ... the low-dose noise (HU) it must give
      noise_cylinder_mm: 250           # optional: water cylinder of the noise targets (default 250)
      noise_source: "..."              # optional: where the targets come from
      n0_paper: null                   # optional: the paper's N0 the targets stand for
      filter_name: cosine              # optional FBP filter (default ramp), filter_cutoff optional
      n_views: null                    # null = as many views as pixels across
      electronic_noise_std: 0.0        # additive Gaussian on counts
      mu_water_per_mm: 0.0171

Phantom ``i`` of split ``s`` uses the seed ``seed + split_seeds[s] + i``
(:meth:`Manifest.phantom_seeds`); the seed ranges of the splits must not
overlap, so splits never share a phantom.

Every malformed field raises :class:`~ldct_nb.errors.ManifestError` naming the
manifest file and the field; missing or bad data files raise
:class:`~ldct_nb.errors.DataError`; a bad argument raises
:class:`~ldct_nb.errors.ParameterError`.
"""
from __future__ import annotations

import copy
import csv
import difflib
import fnmatch
import hashlib
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ldct_nb.errors import DataError, DataWarning, ManifestError, ParameterError

__all__ = [
    "MANIFEST_DIR",
    "SCHEMA_VERSION",
    "KINDS",
    "ANNOTATION_COLUMNS",
    "Manifest",
    "PatientFiles",
    "available_manifests",
    "load_manifest",
]

MANIFEST_DIR: Path = Path(__file__).resolve().parents[2] / "data_manifests"
"""Folder of the shipped manifests (repository checkout, editable install)."""

SCHEMA_VERSION = 1
KINDS = ("synthetic", "paired_dicom", "detection")
PAPERS = ("ascon", "lidnet", "both")
ANNOTATION_COLUMNS = ("image", "x1", "y1", "x2", "y2", "label", "split", "patient")

_COMMON_REQUIRED = ("schema_version", "name", "title", "kind", "paper", "source",
                    "hu_window", "display_window")
_COMMON_OPTIONAL = ("notes", "dataset", "paper_settings", "checksums")
_KIND_REQUIRED = {
    "paired_dicom": ("root_env", "image_size", "layout", "splits", "expected_counts"),
    "detection": ("root_env", "image_size", "annotations", "simulation", "splits",
                  "expected_counts"),
    "synthetic": ("generator", "dose"),
}
_KIND_OPTIONAL = {
    "paired_dicom": ("slice_thickness_mm", "slice_interval_mm", "train_patch_size", "expected_slices",
                     "variants"),
    "detection": ("slice_thickness_mm", "slice_interval_mm", "expected_slices"),
    "synthetic": (),
}
_VARIANT_KEYS = ((), ("layout", "slice_thickness_mm", "slice_interval_mm", "expected_counts",
                      "expected_slices", "notes"))
_SOURCE_KEYS = (("url", "terms", "citation"), ("doi", "notes"))
_LAYOUT_KEYS = (("ndct", "ldct"), ("case_sensitive",))
_ANNOTATION_KEYS = (("file", "format"), ("notes",))
_SIMULATION_KEYS = (("n0", "n0_unit"), ("mu_water_per_mm", "n_views",
                                        "electronic_noise_std", "notes", "filter_name", "filter_cutoff",
                                        "n0_paper", "noise_target_hu", "noise_cylinder_mm", "noise_source"))
_GENERATOR_KEYS = (("kind", "image_size", "fov_mm", "counts", "seed", "split_seeds"), ("lesion_kind",))
_DOSE_KEYS = (("n0_full", "dose_fraction", "n_views", "electronic_noise_std",
               "mu_water_per_mm"), ("filter_name", "filter_cutoff", "noise_target_hu", "ldct_noise_target_hu",
                                    "noise_cylinder_mm", "noise_source", "n0_paper"))
_GLOB_CHARS = set("*?[]")
_MAX_LISTED = 20


# --------------------------------------------------------------------------- YAML


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            continue  # SafeLoader reports unhashable keys itself
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r} (first given on line {seen[key]})",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_mapping)
# YAML 1.1 (PyYAML) reads "1.0e5" and "1e5" as strings; read them as floats (YAML 1.2).
_UniqueKeyLoader.yaml_implicit_resolvers = {
    k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"""),
    list("-+0123456789."))
StrictYamlLoader = _UniqueKeyLoader
"""The YAML loader of manifests (and of the runner's profiles): duplicate keys refused,
``1e6`` / ``1.0e6`` read as floats."""


def _display(path: Path) -> str:
    """The manifest path as messages show it (relative to the repo when inside it)."""
    try:
        return path.resolve().relative_to(MANIFEST_DIR.parent).as_posix()
    except ValueError:
        return str(path)


def _read_yaml(path: Path) -> dict:
    label = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"{label}: cannot read the manifest ({exc})") from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (safe loader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError(f"{label}: YAML syntax error{where}: {problem}") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{label}: the manifest must be a YAML mapping of fields, "
                            f"got {type(data).__name__}")
    return data


# --------------------------------------------------------------------------- validation


class _Checker:
    """Type checks that name the manifest file and the dotted field."""

    def __init__(self, label: str):
        self.label = label

    def fail(self, fld: str, msg: str) -> ManifestError:
        return ManifestError(f"{self.label}: field '{fld}' {msg}")

    @staticmethod
    def _got(value: Any) -> str:
        return f"got {type(value).__name__} {value!r}" if not isinstance(value, (dict, list)) \
            else f"got {type(value).__name__}"

    def keys(self, mapping: dict, fld: str | None, required, optional) -> None:
        where = f"'{fld}'" if fld else "the manifest"
        allowed = tuple(required) + tuple(optional)
        for key in mapping:
            if key not in allowed:
                name = f"{fld}.{key}" if fld else str(key)
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ManifestError(
                    f"{self.label}: unknown field '{name}' in {where}{hint}; "
                    f"allowed fields: {', '.join(allowed)}")
        for key in required:
            if key not in mapping:
                name = f"{fld}.{key}" if fld else key
                raise ManifestError(f"{self.label}: required field '{name}' is missing")

    def mapping(self, value: Any, fld: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(fld, f"must be a mapping, {self._got(value)}")
        return value

    def string(self, value: Any, fld: str, *, choices=None) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(fld, f"must be a non-empty string, {self._got(value)}")
        if choices is not None and value not in choices:
            raise self.fail(fld, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def number(self, value: Any, fld: str, *, positive=False, nonneg=False,
               nullable=False) -> float | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            null = " or null" if nullable else ""
            raise self.fail(fld, f"must be a finite number{null}, {self._got(value)}")
        if positive and value <= 0:
            raise self.fail(fld, f"must be > 0, got {value!r}")
        if nonneg and value < 0:
            raise self.fail(fld, f"must be >= 0, got {value!r}")
        return float(value)

    def integer(self, value: Any, fld: str, *, minimum=1, nullable=False) -> int | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            null = " or null" if nullable else ""
            raise self.fail(fld, f"must be an integer{null}, {self._got(value)}")
        if value < minimum:
            raise self.fail(fld, f"must be an integer >= {minimum}, got {value!r}")
        return value

    def window(self, value: Any, fld: str) -> tuple[float, float]:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise self.fail(fld, f"must be a list of two numbers [low, high] in HU, "
                                 f"{self._got(value)}")
        low = self.number(value[0], f"{fld}[0]")
        high = self.number(value[1], f"{fld}[1]")
        if not low < high:
            raise self.fail(fld, f"must have low < high, got [{value[0]}, {value[1]}]")
        return low, high

    def range_or_number(self, value: Any, fld: str) -> None:
        if value is None:
            return
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise self.fail(fld, f"must be a number, [low, high] or null, {self._got(value)}")
            low = self.number(value[0], f"{fld}[0]", nonneg=True)
            high = self.number(value[1], f"{fld}[1]", positive=True)
            if low > high:
                raise self.fail(fld, f"must have low <= high, got [{value[0]}, {value[1]}]")
            return
        self.number(value, fld, positive=True)

    def patient_id(self, value: Any, fld: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(fld, f"must be a list of patient ids (strings; quote ids that "
                                 f"YAML reads as numbers or booleans), got an item "
                                 f"{self._got(value)}")
        bad = set(value) & (_GLOB_CHARS | {"/", "\\", "{", "}"})
        if bad or value in (".", ".."):
            raise self.fail(fld, f"has a patient id {value!r} with characters not allowed "
                                 f"in a folder name or glob ({''.join(sorted(bad))})")
        return value

    def rel_path(self, value: Any, fld: str) -> str:
        self.string(value, fld)
        posix = PurePosixPath(value.replace("\\", "/"))
        if posix.is_absolute() or Path(value).is_absolute() or ".." in posix.parts:
            raise self.fail(fld, f"must be a path relative to the data root without '..', "
                                 f"got {value!r}")
        return value


def _validate(raw: dict, label: str) -> dict:
    """Check ``raw``; return the normalised values the :class:`Manifest` stores."""
    c = _Checker(label)
    version = raw.get("schema_version")
    if "schema_version" not in raw:
        raise ManifestError(f"{label}: required field 'schema_version' is missing")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise c.fail("schema_version", f"must be {SCHEMA_VERSION}, got {version!r}")
    if "kind" not in raw:
        raise ManifestError(f"{label}: required field 'kind' is missing")
    kind = c.string(raw["kind"], "kind", choices=KINDS)
    c.keys(raw, None, _COMMON_REQUIRED + _KIND_REQUIRED[kind],
           _COMMON_OPTIONAL + _KIND_OPTIONAL[kind])

    out: dict[str, Any] = {"kind": kind}
    out["name"] = c.string(raw["name"], "name")
    out["title"] = c.string(raw["title"], "title")
    out["paper"] = c.string(raw["paper"], "paper", choices=PAPERS)
    source = c.mapping(raw["source"], "source")
    c.keys(source, "source", *_SOURCE_KEYS)
    for key, value in source.items():
        c.string(value, f"source.{key}")
    out["hu_window"] = c.window(raw["hu_window"], "hu_window")
    out["display_window"] = c.window(raw["display_window"], "display_window")
    if raw.get("notes") is not None:
        c.string(raw["notes"], "notes")
    for key in ("dataset", "paper_settings"):
        if raw.get(key) is not None:
            c.mapping(raw[key], key)
    checksums = raw.get("checksums") or {}
    c.mapping(checksums, "checksums")
    for rel, digest in checksums.items():
        c.rel_path(rel, "checksums")
        if not (isinstance(digest, str) and len(digest) == 64
                and all(ch in "0123456789abcdefABCDEF" for ch in digest)):
            raise c.fail(f"checksums.{rel}", f"must be a sha256 hex digest of 64 characters, "
                                             f"{c._got(digest)}")

    if kind == "synthetic":
        out["splits"] = _validate_synthetic(raw, c)
        return out

    out["root_env"] = c.string(raw["root_env"], "root_env")
    c.integer(raw["image_size"], "image_size")
    c.range_or_number(raw.get("slice_thickness_mm"), "slice_thickness_mm")
    c.range_or_number(raw.get("slice_interval_mm"), "slice_interval_mm")
    if raw.get("train_patch_size") is not None:
        c.integer(raw["train_patch_size"], "train_patch_size")
        if raw["train_patch_size"] > raw["image_size"]:
            raise c.fail("train_patch_size", f"must be <= image_size ({raw['image_size']}), "
                                             f"got {raw['train_patch_size']}")
    out["splits"] = _validate_splits(raw["splits"], c, allow_empty=(kind == "detection"))
    for key in ("expected_counts", "expected_slices"):
        if key not in raw:
            continue
        counts = c.mapping(raw[key], key)
        for split, n in counts.items():
            if split not in out["splits"]:
                raise c.fail(f"{key}.{split}", f"names no split; splits are {', '.join(out['splits'])}")
            c.integer(n, f"{key}.{split}")

    if kind == "paired_dicom":
        layout = c.mapping(raw["layout"], "layout")
        c.keys(layout, "layout", *_LAYOUT_KEYS)
        if not isinstance(layout.get("case_sensitive", True), bool):
            raise c.fail("layout.case_sensitive", f"must be true or false, {c._got(layout['case_sensitive'])}")
        if layout["ndct"] == layout["ldct"]:
            raise c.fail("layout", f"has the same glob for ndct and ldct ({layout['ndct']!r}): the full- and "
                                   f"low-dose images must be different files")
        for role in ("ndct", "ldct"):
            pattern = c.rel_path(layout[role], f"layout.{role}")
            if "{patient}" not in pattern:
                raise c.fail(f"layout.{role}", f"must contain the placeholder '{{patient}}', "
                                               f"got {pattern!r}")
            if set(pattern.replace("{patient}", "")) & {"{", "}"}:
                raise c.fail(f"layout.{role}", f"may contain no placeholder other than "
                                               f"'{{patient}}', got {pattern!r}")
    else:
        ann = c.mapping(raw["annotations"], "annotations")
        c.keys(ann, "annotations", *_ANNOTATION_KEYS)
        c.rel_path(ann["file"], "annotations.file")
        c.string(ann["format"], "annotations.format", choices=("csv",))
        sim = c.mapping(raw["simulation"], "simulation")
        c.keys(sim, "simulation", *_SIMULATION_KEYS)
        c.number(sim["n0"], "simulation.n0", positive=True)
        c.string(sim["n0_unit"], "simulation.n0_unit")
        if "mu_water_per_mm" in sim:
            c.number(sim["mu_water_per_mm"], "simulation.mu_water_per_mm", positive=True)
        if "n_views" in sim:
            c.integer(sim["n_views"], "simulation.n_views", nullable=True)
        if "electronic_noise_std" in sim:
            c.number(sim["electronic_noise_std"], "simulation.electronic_noise_std", nonneg=True)
        _validate_noise_fields(sim, "simulation", c)
    return out


def _validate_splits(value: Any, c: _Checker, *, allow_empty: bool) -> dict[str, tuple[str, ...]]:
    splits = c.mapping(value, "splits")
    if not splits:
        raise c.fail("splits", "must name at least one split (e.g. train, test)")
    out: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    for split, ids in splits.items():
        fld = f"splits.{split}"
        c.string(split, "splits")
        if ids is None and allow_empty:
            ids = []
        if not isinstance(ids, list):
            raise c.fail(fld, f"must be a list of patient ids, got {type(ids).__name__}")
        if not ids and not allow_empty:
            raise c.fail(fld, "must list at least one patient id")
        for pid in ids:
            c.patient_id(pid, fld)
            if pid in owner:
                if owner[pid] == split:
                    raise c.fail(fld, f"lists patient {pid!r} twice")
                raise c.fail(fld, f"lists patient {pid!r}, which is also in split "
                                  f"'{owner[pid]}' (data leakage: a patient must belong "
                                  f"to one split only)")
            owner[pid] = split
        out[split] = tuple(ids)
    return out


def _validate_noise_fields(section: dict, name: str, c: _Checker) -> None:
    """The optional FBP filter and noise-target fields of ``dose`` / ``simulation``."""
    from ldct_nb.data.simulate import FILTER_NAMES

    if section.get("filter_name") is not None:
        c.string(section["filter_name"], f"{name}.filter_name", choices=FILTER_NAMES)
    cutoff = c.number(section.get("filter_cutoff"), f"{name}.filter_cutoff", positive=True, nullable=True)
    if cutoff is not None and cutoff > 1:
        raise c.fail(f"{name}.filter_cutoff", f"must be a fraction of the Nyquist frequency in (0, 1], got {cutoff}")
    for key in ("noise_target_hu", "noise_cylinder_mm", "n0_paper"):
        c.number(section.get(key), f"{name}.{key}", positive=True, nullable=True)
    if section.get("noise_source") is not None:
        c.string(section["noise_source"], f"{name}.noise_source")


def _validate_synthetic(raw: dict, c: _Checker) -> dict[str, tuple[str, ...]]:
    gen = c.mapping(raw["generator"], "generator")
    c.keys(gen, "generator", *_GENERATOR_KEYS)
    c.string(gen["kind"], "generator.kind", choices=("abdomen", "chest"))
    c.integer(gen["image_size"], "generator.image_size", minimum=8)
    c.number(gen["fov_mm"], "generator.fov_mm", positive=True)
    seed = c.integer(gen["seed"], "generator.seed", minimum=0)
    counts = c.mapping(gen["counts"], "generator.counts")
    if not counts:
        raise c.fail("generator.counts", "must name at least one split")
    offsets = c.mapping(gen["split_seeds"], "generator.split_seeds")
    for split, n in counts.items():
        c.string(split, "generator.counts")
        c.integer(n, f"generator.counts.{split}")
        if split not in offsets:
            raise c.fail("generator.split_seeds", f"has no seed offset for split '{split}'")
    ranges = []
    for split, off in offsets.items():
        if split not in counts:
            raise c.fail(f"generator.split_seeds.{split}", f"names no split of "
                                                           f"'generator.counts'")
        c.integer(off, f"generator.split_seeds.{split}", minimum=0)
        ranges.append((seed + off, seed + off + counts[split], split))
    ranges.sort()
    for (lo1, hi1, s1), (lo2, _, s2) in zip(ranges, ranges[1:]):
        if lo2 < hi1:
            raise c.fail("generator.split_seeds",
                         f"gives splits '{s1}' and '{s2}' overlapping seed ranges "
                         f"[{lo1}, {hi1}) and [{lo2}, ...): they would share phantoms")
    if gen.get("lesion_kind") is not None:
        from ldct_nb.data.phantom import LESION_KINDS

        c.string(gen["lesion_kind"], "generator.lesion_kind", choices=LESION_KINDS[gen["kind"]])
    dose = c.mapping(raw["dose"], "dose")
    c.keys(dose, "dose", *_DOSE_KEYS)
    for given, target in (("n0_full", "noise_target_hu"), ("dose_fraction", "ldct_noise_target_hu")):
        if (dose[given] is None) == (dose.get(target) is None):
            raise c.fail(f"dose.{given}", f"or 'dose.{target}' must be given (the other null or absent), got "
                                          f"{given}={dose[given]!r}, {target}={dose.get(target)!r}")
    c.number(dose["n0_full"], "dose.n0_full", positive=True, nullable=True)
    frac = c.number(dose["dose_fraction"], "dose.dose_fraction", positive=True, nullable=True)
    if frac is not None and frac > 1:
        raise c.fail("dose.dose_fraction", f"must be in (0, 1], got {frac}")
    c.number(dose.get("ldct_noise_target_hu"), "dose.ldct_noise_target_hu", positive=True, nullable=True)
    _validate_noise_fields(dose, "dose", c)
    c.integer(dose["n_views"], "dose.n_views", nullable=True)
    c.number(dose["electronic_noise_std"], "dose.electronic_noise_std", nonneg=True)
    c.number(dose["mu_water_per_mm"], "dose.mu_water_per_mm", positive=True)
    return {split: tuple(f"{split}-{i:04d}" for i in range(n)) for split, n in counts.items()}


# --------------------------------------------------------------------------- API


@dataclass(frozen=True)
class PatientFiles:
    """The image files of one patient, sorted by path (not by slice position)."""

    patient: str
    split: str
    ndct: tuple[Path, ...]
    ldct: tuple[Path, ...]  # empty for detection sets (their LDCT is simulated)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _glob_files(root: Path, pattern: str, case_sensitive: bool = True, *,
                dirs: bool = False) -> tuple[Path, ...]:
    """Files (or folders, with ``dirs``) under ``root`` matching the relative glob
    ``pattern``, sorted. ``**`` matches any number of folders (none included),
    so ``**/L067/full_1mm/*.IMA`` finds ``L067/full_1mm/...`` as well as the
    AAPM archive's ``FD_1mm/L067/full_1mm/...``. With ``case_sensitive``
    false every component matches whatever its case (TCIA folder names)."""
    parts = [p for p in PurePosixPath(pattern.replace("\\", "/")).parts if p not in ("", ".")]
    found: set[Path] = set()

    def same(name: str, part: str) -> bool:
        if case_sensitive:
            return fnmatch.fnmatchcase(name, part)
        return fnmatch.fnmatchcase(name.casefold(), part.casefold())

    def entries(folder: Path) -> list[os.DirEntry]:
        try:
            with os.scandir(folder) as it:
                return list(it)
        except OSError:
            return []

    def walk(folder: Path, i: int) -> None:
        if i == len(parts):
            if (folder.is_dir() if dirs else folder.is_file()):
                found.add(folder)
            return
        part = parts[i]
        if part == "**":
            walk(folder, i + 1)
            for e in entries(folder):
                if e.is_dir(follow_symlinks=False):
                    walk(folder / e.name, i)
            return
        if case_sensitive and not set(part) & _GLOB_CHARS:
            if (folder / part).exists():
                walk(folder / part, i + 1)
            return
        last = i == len(parts) - 1
        for e in entries(folder):
            if same(e.name, part) and (last or e.is_dir()):
                walk(folder / e.name, i + 1)

    if parts:
        walk(root, 0)
    return tuple(sorted(found))


def _static_prefix(pattern: str) -> str:
    """The leading path components of a glob that contain no wildcard."""
    parts = []
    for part in PurePosixPath(pattern).parts:
        if set(part) & _GLOB_CHARS:
            break
        parts.append(part)
    return "/".join(parts)


@dataclass(frozen=True)
class Manifest:
    """A validated data manifest; see the module docstring for the YAML schema."""

    name: str
    title: str
    kind: str
    paper: str
    path: Path
    raw: dict = field(repr=False, compare=False, hash=False)
    splits: dict[str, tuple[str, ...]] = field(hash=False)
    hu_window: tuple[float, float]
    display_window: tuple[float, float]
    root: Path | None
    variant: str | None = None  # the chosen entry of ``variants`` (None: the manifest as written)

    # ---------------------------------------------------------------- small facts
    @property
    def label(self) -> str:
        """The manifest file as messages show it."""
        return _display(self.path)

    @property
    def root_env(self) -> str | None:
        """Name of the environment variable for the data root (None for synthetic)."""
        return self.raw.get("root_env")

    @property
    def image_size(self) -> int:
        """Image size in pixels across."""
        if self.kind == "synthetic":
            return int(self.raw["generator"]["image_size"])
        return int(self.raw["image_size"])

    @property
    def expected_counts(self) -> dict[str, int]:
        """Slices / pairs (phantoms for synthetic) per split, as the paper reports."""
        if self.kind == "synthetic":
            return dict(self.raw["generator"]["counts"])
        return dict(self.raw["expected_counts"])

    @property
    def paper_settings(self) -> dict:
        """The paper's settings for this data set (copy; empty if none)."""
        return copy.deepcopy(self.raw.get("paper_settings") or {})

    def sha256(self) -> str:
        """sha256 of the manifest file itself (for provenance records)."""
        return _sha256_file(self.path)

    def phantom_seeds(self, split: str) -> list[int]:
        """Synthetic sets: the generator seed of each phantom of ``split``."""
        self._require_kind("phantom_seeds", ("synthetic",))
        self._check_split(split)
        gen = self.raw["generator"]
        start = gen["seed"] + gen["split_seeds"][split]
        return list(range(start, start + gen["counts"][split]))

    def __repr__(self) -> str:
        splits = ", ".join(f"{s}={len(ids)}" for s, ids in self.splits.items())
        if self.kind == "synthetic":
            where = "generated (no root)"
        elif self.root is None:
            where = f"root: not set (pass data_root= or set {self.root_env})"
        else:
            where = f"root: {self.root}"
        variant = f" variant={self.variant}" if self.variant else ""
        return f"<Manifest {self.name!r}{variant} kind={self.kind} paper={self.paper} " \
               f"splits: {splits}; {where}>"

    # ---------------------------------------------------------------- helpers
    def _require_kind(self, what: str, kinds: tuple[str, ...]) -> None:
        if self.kind not in kinds:
            if self.kind == "synthetic":
                raise ParameterError(
                    f"{self.label}: {what}() is not available for kind 'synthetic': synthetic "
                    f"data is generated (ldct_nb.data.phantom), not read from files")
            raise ParameterError(f"{self.label}: {what}() is only available for kind "
                                 f"{' or '.join(kinds)}, this manifest is {self.kind!r}")

    def _check_split(self, split: str) -> None:
        if split not in self.splits:
            raise ParameterError(f"{self.label}: unknown split {split!r}; valid splits: "
                                 f"{', '.join(self.splits)}")

    def _patterns(self, patient: str) -> dict[str, str]:
        layout = self.raw["layout"]
        return {role: layout[role].replace("{patient}", patient).replace("\\", "/")
                for role in ("ndct", "ldct")}

    @property
    def case_sensitive(self) -> bool:
        """Whether the layout globs match file and folder names case-sensitively."""
        return bool((self.raw.get("layout") or {}).get("case_sensitive", True))

    def _glob(self, root: Path, pattern: str, *, dirs: bool = False) -> tuple[Path, ...]:
        return _glob_files(root, pattern, self.case_sensitive, dirs=dirs)

    # ---------------------------------------------------------------- files
    def require_root(self) -> Path:
        """The data root; DataError when it is not set or not a directory."""
        self._require_kind("require_root", ("paired_dicom", "detection"))
        if self.root is None:
            raise DataError(
                f"{self.label}: the data root of {self.name!r} is not set: pass "
                f"data_root=... to load_manifest() or set the environment variable "
                f"{self.root_env} to the folder holding the data ({self.raw['source']['url']})")
        if not self.root.is_dir():
            raise DataError(f"{self.label}: the data root {self.root} is not a directory "
                            f"(from data_root= or ${self.root_env})")
        return self.root

    def patients(self, split: str) -> list[PatientFiles]:
        """The files of every patient of ``split`` (globs expanded, sorted by path).

        Paired sets expand ``layout`` under the root; detection sets take the
        images named by the annotation CSV. Files that are missing are simply
        absent here; :meth:`missing` and :meth:`check_available` report them.
        """
        self._require_kind("patients", ("paired_dicom", "detection"))
        self._check_split(split)
        root = self.require_root()
        if self.kind == "paired_dicom":
            out = []
            for pid in self.splits[split]:
                pats = self._patterns(pid)
                ndct, ldct = self._glob(root, pats["ndct"]), self._glob(root, pats["ldct"])
                shared = sorted(set(ndct) & set(ldct))
                if shared:
                    raise DataError(
                        f"{self.label}: for patient {pid} ({split}) the globs layout.ndct "
                        f"({pats['ndct']!r}) and layout.ldct ({pats['ldct']!r}) match the same "
                        f"{len(shared)} file(s), e.g. {shared[0]}; the full- and low-dose images "
                        f"must be different files")
                out.append(PatientFiles(pid, split, ndct, ldct))
            return out
        images: dict[str, set[Path]] = {}
        for row in self.annotations():
            if row["split"] == split:
                images.setdefault(row["patient"], set()).add(row["path"])
        order = self.splits[split] or tuple(sorted(images))
        return [PatientFiles(pid, split, tuple(sorted(images.get(pid, ()))), ())
                for pid in order]

    def missing(self) -> list[str]:
        """What is missing on disk, one human-readable line per item ([] if complete)."""
        if self.kind == "synthetic":
            return []
        if self.root is None:
            return [f"data root not set (pass data_root= or set ${self.root_env})"]
        if not self.root.is_dir():
            return [f"data root folder {self.root} does not exist"]
        root = self.root
        out: list[str] = []
        if self.kind == "paired_dicom":
            for split, ids in self.splits.items():
                for pid in ids:
                    pats = self._patterns(pid)
                    patient_dir = self._patient_dir(pats["ndct"], pid)
                    if patient_dir is not None and not self._glob(root, patient_dir, dirs=True):
                        out.append(f"patient folder {root / patient_dir} ({split}) does not exist")
                        continue
                    counts = {}
                    for role, pattern in pats.items():
                        prefix = _static_prefix(pattern)
                        if prefix and prefix != pattern and not self._glob(root, prefix, dirs=True):
                            out.append(f"folder {root / prefix} ({split}, layout.{role}) "
                                       f"does not exist")
                            continue
                        counts[role] = len(self._glob(root, pattern))
                        if counts[role] == 0:
                            out.append(f"no file matches {root / pattern} "
                                       f"({split}, layout.{role})")
                    if len(counts) == 2 and 0 < counts["ndct"] != counts["ldct"] > 0:
                        out.append(f"patient {pid} ({split}): {counts['ndct']} NDCT files but "
                                   f"{counts['ldct']} LDCT files")
        else:
            ann = root / self.raw["annotations"]["file"]
            if not ann.is_file():
                out.append(f"annotation file {ann} does not exist")
            else:
                try:
                    rows = self.annotations()
                except DataError as exc:
                    out.append(str(exc))
                    rows = []
                seen: set[Path] = set()
                for row in rows:
                    if row["path"] not in seen:
                        seen.add(row["path"])
                        if not row["path"].is_file():
                            out.append(f"image {row['path']} (annotation line {row['line']}) "
                                       f"does not exist")
                for split, ids in self.splits.items():
                    have = {r["patient"] for r in rows if r["split"] == split}
                    for pid in ids:
                        if rows and pid not in have:
                            out.append(f"patient {pid} ({split}) has no row in {ann}")
        for rel in (self.raw.get("checksums") or {}):
            if not (root / rel).is_file():
                out.append(f"checksummed file {root / rel} does not exist")
        return out

    @staticmethod
    def _patient_dir(pattern: str, pid: str) -> str | None:
        """Leading components of a substituted pattern up to the patient's folder."""
        parts = PurePosixPath(pattern).parts
        for i, part in enumerate(parts[:-1]):
            if set(part) & _GLOB_CHARS:
                return None
            if pid in part:
                return "/".join(parts[: i + 1])
        return None

    def check_available(self) -> None:
        """DataError listing what is missing (see :meth:`missing`); no-op when complete."""
        items = self.missing()
        if not items:
            return
        shown = "\n".join(f"  - {item}" for item in items[:_MAX_LISTED])
        more = f"\n  ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
        hint = ("adapt the 'layout' globs of the manifest to your copy" if self.kind ==
                "paired_dicom" else "check 'annotations.file' and the CSV's image paths")
        raise DataError(f"{self.label}: {len(items)} item(s) of data set {self.name!r} are "
                        f"missing (root: {self.root}):\n{shown}{more}\nObtain the data from "
                        f"{self.raw['source']['url']}, or {hint}.")

    @property
    def expected_slices(self) -> dict[str, int]:
        """Slices per split that the data on disk must have: ``expected_slices`` where
        given (Mayo-2020's ``expected_counts`` counts patches), else ``expected_counts``."""
        if self.kind == "synthetic":
            return self.expected_counts
        if "expected_slices" in self.raw:
            return dict(self.raw["expected_slices"])
        return dict(self.raw["expected_counts"])

    def found_slices(self, split: str) -> dict[str, int]:
        """Slices found on disk per patient of ``split`` (NDCT files; annotated images for
        detection sets)."""
        return {p.patient: len(p.ndct) for p in self.patients(split)}

    def check_counts(self, *, allow_partial: bool = False) -> dict[str, dict[str, int]]:
        """Compare the slices found with :attr:`expected_slices`; DataError naming the
        split, the expected and found counts and the count of every patient. With
        ``allow_partial`` fewer slices than expected are accepted with a warning
        (never more: that means a glob matches files it should not). Returns the
        counts found per split and patient."""
        expected = self.expected_slices
        found = {split: self.found_slices(split) for split in self.splits}
        for split, want in expected.items():
            per_patient = found[split]
            got = sum(per_patient.values())
            if got == want:
                continue
            listing = ", ".join(f"{pid} {n}" for pid, n in per_patient.items()) or "no patient"
            key = "expected_slices" if "expected_slices" in self.raw else "expected_counts"
            msg = (f"{self.label}: split {split!r} has {got} slices on disk, expected {want} "
                   f"({key}.{split}); found per patient: {listing}")
            if allow_partial and got < want:
                warnings.warn(msg + "; accepted as partial data (allow_partial)", DataWarning,
                              stacklevel=2)
                continue
            hint = ("; pass allow_partial=True to use partial data" if got < want else
                    "; a layout glob matches more files than the data set has (another series "
                    "or reconstruction?)")
            raise DataError(msg + hint)
        return found

    def verify_checksums(self) -> None:
        """DataError naming the first file that is missing or has another sha256."""
        checksums = self.raw.get("checksums") or {}
        if not checksums:
            return
        root = self.require_root()
        for rel, expected in checksums.items():
            path = root / rel
            if not path.is_file():
                raise DataError(f"{self.label}: checksummed file {path} does not exist")
            actual = _sha256_file(path)
            if actual.lower() != expected.lower():
                raise DataError(f"{self.label}: sha256 mismatch for {path}: expected "
                                f"{expected.lower()}, got {actual}")

    def annotations(self) -> list[dict]:
        """Detection sets: the rows of the annotation CSV, validated.

        Each row is a dict with ``image`` (as in the CSV), ``path`` (absolute),
        ``x1, y1, x2, y2`` (floats, pixel coordinates, x = column; None for an
        image without lesion), ``box`` (the tuple or None), ``label`` (int,
        0 for an image without lesion), ``split``, ``patient`` and ``line``
        (line number in the CSV). DataError names the file and line.
        """
        self._require_kind("annotations", ("detection",))
        root = self.require_root()
        path = root / self.raw["annotations"]["file"]
        if not path.is_file():
            raise DataError(f"{self.label}: annotation file {path} does not exist")
        size = self.image_size
        rows: list[dict] = []
        owner: dict[str, tuple[str, int]] = {}
        try:
            fh = open(path, newline="", encoding="utf-8-sig")
        except OSError as exc:
            raise DataError(f"{path}: cannot read the annotation file ({exc})") from exc
        with fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            absent = [col for col in ANNOTATION_COLUMNS if col not in header]
            if absent:
                raise DataError(f"{path}: line 1: the header lacks column(s) "
                                f"{', '.join(absent)}; required: {','.join(ANNOTATION_COLUMNS)}")
            for rec in reader:
                line = reader.line_num
                rows.append(self._annotation_row(rec, path, line, root, size, owner))
        return rows

    def _annotation_row(self, rec: dict, path: Path, line: int, root: Path, size: int,
                        owner: dict[str, tuple[str, int]]) -> dict:
        def bad(msg: str) -> DataError:
            return DataError(f"{path}: line {line}: {msg}")

        if None in rec or any(rec.get(col) is None for col in ANNOTATION_COLUMNS):
            raise bad(f"the row has {'more' if None in rec else 'fewer'} fields than the "
                      f"header ({','.join(ANNOTATION_COLUMNS)} ...)")
        vals = {k: (v or "").strip() for k, v in rec.items() if k is not None}
        image = vals["image"]
        posix = PurePosixPath(image.replace("\\", "/"))
        if not image or posix.is_absolute() or ".." in posix.parts:
            raise bad(f"column 'image' must be a path relative to the data root, got {image!r}")
        split, pid = vals["split"], vals["patient"]
        if split not in self.splits:
            raise bad(f"column 'split' is {split!r}; valid splits: {', '.join(self.splits)}")
        if not pid:
            raise bad("column 'patient' is empty")
        listed = self.splits[split]
        if any(self.splits.values()) and pid not in listed:
            where = [s for s, ids in self.splits.items() if pid in ids]
            raise bad(f"patient {pid!r} is in split '{split}' here but the manifest lists it "
                      f"{'in split ' + repr(where[0]) if where else 'in no split'}")
        if pid in owner and owner[pid][0] != split:
            raise bad(f"patient {pid!r} is in split '{split}' here and in split "
                      f"'{owner[pid][0]}' on line {owner[pid][1]} (data leakage)")
        owner.setdefault(pid, (split, line))
        coords = [vals[k] for k in ("x1", "y1", "x2", "y2")]
        box = None
        if all(c == "" for c in coords):
            if vals["label"] not in ("", "0"):
                raise bad(f"a row without box must have label empty or 0, got {vals['label']!r}")
            label = 0
        else:
            try:
                x1, y1, x2, y2 = (float(c) for c in coords)
            except ValueError:
                raise bad(f"x1,y1,x2,y2 must be numbers, got {','.join(coords)}") from None
            if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
                raise bad(f"x1,y1,x2,y2 must be finite, got {','.join(coords)}")
            if not (x2 > x1 and y2 > y1):
                raise bad(f"the box must have x2 > x1 and y2 > y1, got "
                          f"x1={x1:g} y1={y1:g} x2={x2:g} y2={y2:g}")
            if min(x1, y1) < 0 or max(x2, y2) > size:
                raise bad(f"the box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) leaves the "
                          f"{size}x{size} image")
            try:
                label = int(vals["label"])
            except ValueError:
                raise bad(f"column 'label' must be an integer class, got "
                          f"{vals['label']!r}") from None
            if label < 1:
                raise bad(f"column 'label' of a box must be >= 1 (1 = lesion), got {label}")
            box = (x1, y1, x2, y2)
        return {"image": image, "path": root / posix, "x1": box and box[0],
                "y1": box and box[1], "x2": box and box[2], "y2": box and box[3],
                "box": box, "label": label, "split": split, "patient": pid, "line": line}


# --------------------------------------------------------------------------- loading


def available_manifests() -> list[str]:
    """Names of the shipped manifests (YAML files in :data:`MANIFEST_DIR`), sorted."""
    if not MANIFEST_DIR.is_dir():
        return []
    return sorted(p.stem for p in MANIFEST_DIR.iterdir()
                  if p.suffix in (".yaml", ".yml") and p.is_file())


def _locate(name_or_path: str | Path) -> Path:
    if isinstance(name_or_path, Path):
        candidate = name_or_path
    elif isinstance(name_or_path, str) and name_or_path.strip():
        text = name_or_path.strip()
        is_path = ("/" in text or "\\" in text or text.endswith((".yaml", ".yml")))
        if not is_path:
            for suffix in (".yaml", ".yml"):
                path = MANIFEST_DIR / f"{text}{suffix}"
                if path.is_file():
                    return path
            raise ManifestError(f"no manifest named {text!r} in {_display(MANIFEST_DIR)}; "
                                f"available: {', '.join(available_manifests()) or 'none'} "
                                f"(or pass the path to a YAML file)")
        candidate = Path(text)
    else:
        raise ParameterError(f"name_or_path must be a manifest name or a path, got "
                             f"{name_or_path!r}")
    candidate = candidate.expanduser()
    if not candidate.is_file():
        raise ManifestError(f"{candidate}: manifest file not found; shipped manifests: "
                            f"{', '.join(available_manifests()) or 'none'}")
    return candidate


def _variants(raw: dict, label: str) -> dict[str, dict]:
    """The manifest's ``variants`` (name -> field overrides), checked."""
    c = _Checker(label)
    variants = c.mapping(raw.get("variants") or {}, "variants")
    for name, over in variants.items():
        c.string(name, "variants")
        c.keys(c.mapping(over, f"variants.{name}"), f"variants.{name}", *_VARIANT_KEYS)
    return variants


def _with_variant(raw: dict, label: str, variant: str) -> dict:
    variants = _variants(raw, label)
    if variant not in variants:
        raise ParameterError(f"{label}: no variant {variant!r}; variants: "
                             f"{', '.join(variants) or 'none'}")
    merged = copy.deepcopy(raw)
    merged.update({k: copy.deepcopy(v) for k, v in variants[variant].items() if k != "notes"})
    if "expected_slices" in raw and "expected_slices" not in variants[variant]:
        del merged["expected_slices"]  # the base's slice counts are not the variant's
    return merged


def load_manifest(name_or_path: str | Path, *,
                  data_root: str | Path | None = None,
                  variant: str | None = None) -> Manifest:
    """Load and validate a manifest by name (``"mayo2016"``) or path to a YAML file.

    The data root is ``data_root`` when given, else the environment variable
    named by the manifest's ``root_env`` (when set and non-empty), else None.
    Synthetic manifests have no root (``data_root`` must be None). ``variant``
    picks one of the manifest's ``variants`` (e.g. Mayo-2016's ``3mm``
    reconstructions): its fields replace the manifest's.
    """
    path = _locate(name_or_path).resolve()
    label = _display(path)
    raw = _read_yaml(path)
    norm = _validate(raw, label)
    for name in _variants(raw, label):  # every variant must be valid, chosen or not
        _validate(_with_variant(raw, label, name), f"{label} (variant {name!r})")
    if variant is not None:
        if not isinstance(variant, str):
            raise ParameterError(f"variant must be a variant name or None, got {variant!r}")
        raw = _with_variant(raw, label, variant)
        norm = _validate(raw, f"{label} (variant {variant!r})")
    root: Path | None = None
    if norm["kind"] == "synthetic":
        if data_root is not None:
            raise ParameterError(f"{label}: data_root must be None for a synthetic manifest "
                                 f"(synthetic data is generated, not read), got {data_root!r}")
    else:
        if data_root is not None:
            if not isinstance(data_root, (str, Path)) or not str(data_root).strip():
                raise ParameterError(f"data_root must be a folder path (str or Path) or None, "
                                     f"got {data_root!r}")
            root = Path(data_root).expanduser().resolve()
        else:
            env = os.environ.get(norm["root_env"], "").strip()
            if env:
                root = Path(env).expanduser().resolve()
    return Manifest(name=norm["name"], title=norm["title"], kind=norm["kind"],
                    paper=norm["paper"], path=path, raw=copy.deepcopy(raw),
                    splits=norm["splits"], hu_window=norm["hu_window"],
                    display_window=norm["display_window"], root=root, variant=variant)
