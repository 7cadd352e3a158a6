"""Doses given by their effect: the N0 of the synthetic benchmark from noise targets.

A manifest's ``dose`` may give N0 directly (``n0_full``, ``dose_fraction``) or
by the noise it must produce: ``noise_target_hu`` (full dose) and
``ldct_noise_target_hu`` (low dose), each the noise standard deviation in the
centre (60 % of the diameter) of a water cylinder of ``noise_cylinder_mm``
(default 250 mm, about an adult abdomen) reconstructed with the benchmark's
geometry and filter. :func:`resolve_dose` turns targets into N0 with
:func:`~ldct_nb.data.noise.calibrate_n0` for the image size at hand, so a
profile at 128 pixels and one at 512 get the same noise level, each with its
own N0 (at fixed N0 the noise grows with the resolution).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from ldct_nb.data import noise
from ldct_nb.errors import ParameterError
from ldct_nb.validate import check_positive

__all__ = ["DoseSettings", "dose_table", "resolve_dose"]

DEFAULT_CYLINDER_MM = 250.0


@dataclass(frozen=True)
class DoseSettings:
    """The N0 of both doses and where they come from.

    ``n0_full`` / ``n0_low`` (= ``dose_fraction * n0_full``) are photons per
    detector bin per view; ``*_noise_hu`` the noise they give in the water
    cylinder (measured by the calibration; None when N0 was given directly);
    ``*_target_hu`` the targets (None when N0 was given)."""

    n0_full: float
    dose_fraction: float
    full_target_hu: float | None
    low_target_hu: float | None
    full_noise_hu: float | None
    low_noise_hu: float | None
    cylinder_mm: float

    @property
    def n0_low(self) -> float:
        return self.n0_full * self.dose_fraction

    def __repr__(self) -> str:
        def part(name, n0, target, measured):
            how = f" (calibrated: {measured:.1f} HU for a {target:g} HU target)" if target is not None else ""
            return f"{name} N0 {n0:.4g}{how}"
        return (f"DoseSettings({part('full', self.n0_full, self.full_target_hu, self.full_noise_hu)}, "
                f"{part('low', self.n0_low, self.low_target_hu, self.low_noise_hu)}, "
                f"{self.cylinder_mm:g} mm water cylinder)")


@lru_cache(maxsize=64)
def _calibrated(target_hu: float, size: int, fov_mm: float, cylinder_mm: float, n_views, mu_water_per_mm: float,
                electronic_noise_std: float, filter_name: str, filter_cutoff, device) -> noise.N0Calibration:
    hu, region = noise.water_reference(size, diameter_mm=cylinder_mm, fov_mm=fov_mm)
    return noise.calibrate_n0(
        target_hu, hu, region, pixel_size_mm=fov_mm / size, n_views=n_views, mu_water_per_mm=mu_water_per_mm,
        electronic_noise_std=electronic_noise_std, filter_name=filter_name, filter_cutoff=filter_cutoff,
        circle=True, device=device,
    )


def resolve_dose(
    *,
    image_size: int,
    fov_mm: float,
    n0_full: float | None = None,
    dose_fraction: float | None = None,
    noise_target_hu: float | None = None,
    ldct_noise_target_hu: float | None = None,
    noise_cylinder_mm: float | None = None,
    n_views: int | None = None,
    mu_water_per_mm: float = 0.0171,
    electronic_noise_std: float = 0.0,
    filter_name: str = "ramp",
    filter_cutoff: float | None = None,
    device: str | None = None,
) -> DoseSettings:
    """N0 at full and low dose: given (``n0_full``, ``dose_fraction``) or calibrated
    from noise targets (``noise_target_hu``, ``ldct_noise_target_hu``) for this
    geometry. Exactly one of each pair must be given. Calibrations are cached
    per geometry within the process."""
    if (n0_full is None) == (noise_target_hu is None):
        raise ParameterError(f"give exactly one of n0_full ({n0_full!r}) and noise_target_hu ({noise_target_hu!r})")
    if (dose_fraction is None) == (ldct_noise_target_hu is None):
        raise ParameterError(f"give exactly one of dose_fraction ({dose_fraction!r}) and ldct_noise_target_hu "
                             f"({ldct_noise_target_hu!r})")
    for name, value in (("n0_full", n0_full), ("dose_fraction", dose_fraction), ("noise_target_hu", noise_target_hu),
                        ("ldct_noise_target_hu", ldct_noise_target_hu), ("noise_cylinder_mm", noise_cylinder_mm)):
        if value is not None:
            check_positive(value, name)  # not float(True) = 1 photon, not float("abc")'s ValueError
    if dose_fraction is not None and dose_fraction > 1:
        raise ParameterError(f"dose_fraction must be in (0, 1] (the low dose is a fraction of the full one), "
                             f"got {dose_fraction!r}")
    cylinder = DEFAULT_CYLINDER_MM if noise_cylinder_mm is None else float(noise_cylinder_mm)
    if not (math.isfinite(cylinder) and 0 < cylinder < fov_mm):
        raise ParameterError(f"noise_cylinder_mm must be in (0, fov_mm={fov_mm}), got {noise_cylinder_mm!r}")
    geometry = (int(image_size), float(fov_mm), cylinder, n_views, float(mu_water_per_mm),
                float(electronic_noise_std), filter_name, filter_cutoff, device)
    full = low = None
    if noise_target_hu is not None:
        full = _calibrated(float(noise_target_hu), *geometry)
        n0_full = full.n0
    if ldct_noise_target_hu is not None:
        if noise_target_hu is not None and ldct_noise_target_hu < noise_target_hu:
            raise ParameterError(f"ldct_noise_target_hu ({ldct_noise_target_hu}) must not be below "
                                 f"noise_target_hu ({noise_target_hu}): the low dose is the noisier one")
        low = _calibrated(float(ldct_noise_target_hu), *geometry)
        dose_fraction = low.n0 / float(n0_full)
        if dose_fraction > 1:
            raise ParameterError(f"ldct_noise_target_hu {ldct_noise_target_hu} HU needs N0 {low.n0:.4g}, more than "
                                 f"the full dose's {n0_full:.4g}")
    return DoseSettings(float(n0_full), float(dose_fraction), None if full is None else full.target_hu,
                        None if low is None else low.target_hu, None if full is None else full.measured_hu,
                        None if low is None else low.measured_hu, cylinder)


def dose_table(manifests, *, image_size: int, device: str | None = None, literal_pairs: int = 2) -> list[dict]:
    """One row per manifest: the paper's N0, the noise targets and their source, the
    N0 used and the noise it gives in the water cylinder. Synthetic manifests are
    calibrated for ``image_size`` (and the noise the paper's N0 would give if applied
    literally at that size is measured, ``literal_pairs`` pairs of scans); detection
    manifests report their stated values (for 512 x 512, 0.7 mm pixels)."""
    from ldct_nb.data.stage import synthetic_settings

    rows = []
    for m in manifests:
        if m.kind == "synthetic":
            s = synthetic_settings(m, image_size=image_size, device=device)
            raw, d = m.raw["dose"], s["dose"]
            paper = raw.get("n0_paper")
            literal = math.nan
            if paper is not None:
                hu, region = noise.water_reference(image_size, diameter_mm=d.cylinder_mm, fov_mm=s["fov_mm"])
                literal = noise._pair_noise(
                    hu, region, float(paper), list(range(10_000, 10_000 + 2 * literal_pairs)),
                    dict(pixel_size_mm=s["fov_mm"] / image_size, n_views=s["n_views"], circle=True,
                         mu_water_per_mm=s["mu_water_per_mm"], filter_name=s["filter_name"],
                         filter_cutoff=s["filter_cutoff"], device=device))
            rows.append({"data set": m.name, "pixels": f"{image_size} px, {s['fov_mm'] / image_size:.2f} mm",
                         "filter": s["filter_name"], "paper N0": paper,
                         "paper N0 applied literally: noise (HU)": literal,
                         "NDCT target (HU)": d.full_target_hu, "NDCT N0 used": d.n0_full,
                         "NDCT noise (HU)": d.full_noise_hu,
                         "LDCT target (HU)": d.low_target_hu if d.low_target_hu is not None
                         else (d.full_target_hu / math.sqrt(d.dose_fraction) if d.full_target_hu else None),
                         "LDCT N0 used": d.n0_low,
                         "LDCT noise (HU)": d.low_noise_hu if d.low_noise_hu is not None
                         else (d.full_noise_hu / math.sqrt(d.dose_fraction) if d.full_noise_hu else None),
                         "source": raw.get("noise_source", "")})
        elif m.kind == "detection":
            sim = m.raw["simulation"]
            paper, target = sim.get("n0_paper"), sim.get("noise_target_hu")
            literal = target * math.sqrt(sim["n0"] / paper) if paper and target else math.nan  # sigma ~ 1/sqrt(N0)
            rows.append({"data set": m.name, "pixels": "512 px, 0.70 mm (stated)", "filter": sim.get("filter_name", "ramp"),
                         "paper N0": paper, "paper N0 applied literally: noise (HU)": literal,
                         "NDCT target (HU)": None, "NDCT N0 used": None, "NDCT noise (HU)": None,
                         "LDCT target (HU)": sim.get("noise_target_hu"), "LDCT N0 used": sim["n0"],
                         "LDCT noise (HU)": sim.get("noise_target_hu"), "source": sim.get("noise_source", "")})
    return rows
