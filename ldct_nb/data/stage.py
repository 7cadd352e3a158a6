"""The data stage (notebook 01): turn a manifest into cached splits.

``prepare_data`` dispatches on the manifest kind: the synthetic benchmark is
generated and simulated, paired DICOM sets (Mayo-2016 / Mayo-2020) are read
and paired, detection sets (PE-CT, L-CT-A, L-CT-G) are read and their LDCT
simulated at the manifest's N0. Notebook parameters override the manifest's
generator and dose values; the cache is reused when nothing changed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ldct_nb.data import cache
from ldct_nb.data.cache import CacheSplit
from ldct_nb.data.manifest import Manifest
from ldct_nb.errors import ParameterError
from ldct_nb.validate import check_int


def synthetic_settings(manifest: Manifest, *, device: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The synthetic generator and dose settings: the manifest's values with
    every non-None override applied (``image_size``, ``counts``, ``phantom_kind``,
    ``lesion_kind``, ``n0_full``, ``dose_fraction``, ``noise_target_hu``,
    ``ldct_noise_target_hu``, ``filter_name``, ``filter_cutoff``, ``seed``,
    ``n_views``, ``fov_mm``). Noise targets are turned into N0 for this image
    size (:func:`ldct_nb.data.dose.resolve_dose`; an N0 override wins over a
    target, a target override over the manifest's N0); ``settings["dose"]``
    records how."""
    from ldct_nb.data.dose import resolve_dose

    gen = dict(manifest.raw["generator"])
    dose = dict(manifest.raw["dose"])
    if overrides.get("noise_target_hu") is not None and overrides.get("n0_full") is None:
        dose["n0_full"] = None
    if overrides.get("ldct_noise_target_hu") is not None and overrides.get("dose_fraction") is None:
        dose["dose_fraction"] = None
    if overrides.get("n0_full") is not None:
        dose["noise_target_hu"] = None
    if overrides.get("dose_fraction") is not None:
        dose["ldct_noise_target_hu"] = None
    settings = {
        "image_size": gen["image_size"],
        "counts": dict(gen["counts"]),
        "phantom_kind": gen["kind"],
        "fov_mm": float(gen["fov_mm"]),
        "seed": int(gen["seed"]),
        "split_seeds": dict(gen["split_seeds"]),
        "lesion_kind": gen.get("lesion_kind"),
        "n0_full": dose["n0_full"],
        "dose_fraction": dose["dose_fraction"],
        "noise_target_hu": dose.get("noise_target_hu"),
        "ldct_noise_target_hu": dose.get("ldct_noise_target_hu"),
        "filter_name": dose.get("filter_name") or "ramp",
        "filter_cutoff": dose.get("filter_cutoff"),
        "n_views": dose.get("n_views"),
        "electronic_noise_std": float(dose.get("electronic_noise_std", 0.0)),
        "mu_water_per_mm": float(dose.get("mu_water_per_mm", 0.0171)),
    }
    for key, value in overrides.items():
        if key not in settings:
            raise ParameterError(f"unknown synthetic setting {key!r}; known: {sorted(settings)}")
        if value is not None:
            settings[key] = dict(value) if isinstance(value, dict) else value
    from ldct_nb.data.phantom import LESION_KINDS

    if overrides.get("lesion_kind") is None and settings["lesion_kind"] not in LESION_KINDS.get(
            settings["phantom_kind"], (settings["lesion_kind"],)):
        settings["lesion_kind"] = None  # the manifest's lesion kind belongs to the other anatomy: its default
    # sizes, counts and seeds must be ints: 64.5 or "64" must not become 64 silently
    settings["image_size"] = check_int(settings["image_size"], "image_size")
    settings["seed"] = check_int(settings["seed"], "seed", minimum=0)
    if not isinstance(settings["counts"], dict) or not settings["counts"]:
        raise ParameterError(f"counts must map split names to numbers of phantoms, got {settings['counts']!r}")
    for split, n in settings["counts"].items():
        settings["counts"][split] = check_int(n, f"counts[{split!r}]")
    unknown = set(settings["counts"]) - set(settings["split_seeds"])
    if unknown:
        raise ParameterError(f"counts names split(s) {sorted(unknown)} that the manifest has no seed for")
    ranges = sorted(
        (settings["split_seeds"][s], settings["split_seeds"][s] + n, s) for s, n in settings["counts"].items()
    )
    for (a0, a1, sa), (b0, _, sb) in zip(ranges, ranges[1:]):
        if a1 > b0:
            raise ParameterError(
                f"counts: split {sa!r} ({a1 - a0} phantoms from seed {a0}) would reuse phantoms of split {sb!r} "
                f"(from seed {b0}); lower the counts or spread split_seeds in {manifest.path}"
            )
    resolved = resolve_dose(
        image_size=settings["image_size"], fov_mm=settings["fov_mm"], n0_full=settings["n0_full"],
        dose_fraction=settings["dose_fraction"], noise_target_hu=settings["noise_target_hu"],
        ldct_noise_target_hu=settings["ldct_noise_target_hu"], noise_cylinder_mm=dose.get("noise_cylinder_mm"),
        n_views=settings["n_views"], mu_water_per_mm=settings["mu_water_per_mm"],
        electronic_noise_std=settings["electronic_noise_std"], filter_name=settings["filter_name"],
        filter_cutoff=settings["filter_cutoff"], device=device,
    )
    settings.update(n0_full=resolved.n0_full, dose_fraction=resolved.dose_fraction, dose=resolved)
    return settings


def prepare_data(
    manifest: Manifest,
    run_dir: str | Path,
    *,
    splits: list[str] | None = None,
    max_slices_per_patient: int = 0,
    device: str | None = None,
    force: bool = False,
    progress: bool = True,
    allow_partial: bool = False,
    hash_files: bool = False,
    **synthetic_overrides: Any,
) -> dict[str, CacheSplit]:
    """Build (or reuse) the cache of every split of ``manifest`` in ``run_dir/data``.

    ``synthetic_overrides`` apply to the synthetic manifest only (see
    :func:`synthetic_settings`), except ``seed``, which every kind accepts:
    it also seeds the simulated LDCT noise of detection sets (paired DICOM
    sets have measured LDCT and ignore it).

    Real data sets are refused (:class:`~ldct_nb.errors.DataError`) when files
    are missing, a checksum differs, or the slices on disk differ from the
    manifest's counts (:meth:`Manifest.check_counts
    <ldct_nb.data.manifest.Manifest.check_counts>`; ``allow_partial`` accepts
    fewer). A cached split is reused only when its inputs are unchanged (file
    sizes and modification times, or sha256 with ``hash_files``). The whole
    stage holds the lock of ``run_dir/data``: a second process waits."""
    check_int(max_slices_per_patient, "max_slices_per_patient", minimum=0)
    with cache.data_lock(run_dir):
        return _prepare_locked(manifest, run_dir, splits, max_slices_per_patient, device, force, progress,
                               allow_partial, hash_files, synthetic_overrides)


def _prepare_locked(manifest, run_dir, splits, max_slices_per_patient, device, force, progress, allow_partial,
                    hash_files, synthetic_overrides) -> dict[str, CacheSplit]:
    cache.clean_partial(run_dir)
    if manifest.kind == "synthetic":
        s = synthetic_settings(manifest, device=device, **synthetic_overrides)
        unknown = sorted(set(splits or ()) - set(s["counts"]))
        if unknown:
            raise ParameterError(f"splits: {unknown} are not splits of {manifest.name}; known: {list(s['counts'])}")
        out = {}
        for split, n in s["counts"].items():
            if splits and split not in splits:
                continue
            out[split] = cache.build_synthetic_split(
                run_dir, split, n_slices=int(n), image_size=int(s["image_size"]),
                base_seed=s["seed"] + int(s["split_seeds"][split]), kind=s["phantom_kind"], fov_mm=s["fov_mm"],
                lesion_kind=s["lesion_kind"], filter_name=s["filter_name"], filter_cutoff=s["filter_cutoff"],
                n0_full=s["n0_full"], dose_fraction=s["dose_fraction"], n_views=s["n_views"],
                electronic_noise_std=s["electronic_noise_std"], mu_water_per_mm=s["mu_water_per_mm"],
                hu_window=manifest.hu_window, dataset=manifest.name, manifest_sha256=manifest.sha256(),
                device=device, force=force, progress=progress,
            )
        return out
    extra = {k: v for k, v in synthetic_overrides.items() if v is not None and k != "seed"}
    if extra:
        raise ParameterError(
            f"{sorted(extra)} only apply to the synthetic manifest; {manifest.name} is read from {manifest.root}"
        )
    manifest.check_available()
    manifest.verify_checksums()
    manifest.check_counts(allow_partial=allow_partial)
    unknown = sorted(set(splits or ()) - set(manifest.splits))
    if unknown:
        raise ParameterError(f"splits: {unknown} are not splits of {manifest.name}; known: {list(manifest.splits)}")
    names = splits or list(manifest.splits)
    if manifest.kind == "paired_dicom":
        return {
            split: cache.build_paired_dicom_split(
                run_dir, manifest, split, max_slices_per_patient=max_slices_per_patient, hash_files=hash_files,
                force=force, progress=progress,
            )
            for split in names
        }
    seed = synthetic_overrides.get("seed")
    return {
        split: cache.build_detection_split(
            run_dir, manifest, split, max_slices=max_slices_per_patient, seed=0 if seed is None else seed,
            hash_files=hash_files, device=device, force=force, progress=progress,
        )
        for split in names
    }


def dataset_table(splits: dict[str, CacheSplit]):
    """One row per split: slices, size, pixel size, patients, lesions, mean HU and
    noise (std of LDCT - NDCT inside the body, HU)."""
    import numpy as np
    import pandas as pd

    rows = []
    for name, sp in splits.items():
        n = len(sp)
        take = np.linspace(0, n - 1, min(n, 8)).round().astype(int)
        nd, ld = np.asarray(sp.ndct[take]), np.asarray(sp.ldct[take])
        body = nd > -500
        rows.append(
            {
                "split": name,
                "slices": n,
                "size": "x".join(map(str, sp.ndct.shape[1:])),
                "patients": len({s.get("patient") for s in sp.meta["slices"]}),
                "lesion boxes": sum(len(b) for b in sp.boxes),
                "NDCT mean HU (body)": round(float(nd[body].mean()), 1),
                "std(LDCT - NDCT) HU (body)": round(float((ld - nd)[body].std()), 1),
            }
        )
    return pd.DataFrame(rows).set_index("split")
