"""Procedural anthropomorphic CT phantoms: the project's embedded synthetic benchmark.

No real patient data is needed (or downloaded) to run the notebooks end to end:
:func:`make_phantom` draws a 2-D axial slice of an abdomen (upper abdomen, liver /
kidney / spleen level) or a chest (heart level) from a seed, with a ground-truth
tissue label map and bounding boxes of the embedded low-contrast lesions.

Model
-----
* **Units.** ``Phantom.hu`` is in Hounsfield units (HU, water 0, air -1000).
  Geometry is in millimetres; ``pixel_size_mm = fov_mm / size``.
* **Orientation.** Radiological convention: image top is anterior, image left is
  the patient's right (so the liver is on the image left, the spleen on the image
  right, the spine at the bottom).  ``x`` is the column, ``y`` the row.
* **Continuous anatomy.** Every structure is a (super)ellipse, optionally with a
  smooth radial "wobble" ``r(theta) = 1 + sum_k a_k cos(k theta + phi_k)`` and
  optionally clipped to other structures, defined in physical coordinates (mm,
  origin at the image centre).  Structures are painted in anatomical order
  (painter's algorithm: later ones occlude earlier ones) and rasterised by testing
  pixel centres, so one seed gives the same anatomy at every ``size``; only the
  sampling changes.  All random draws (anatomy, texture, lesion placement) are
  made on grids defined in millimetres, never on the output grid.
* **Fit.** The body is centred and, if it would not fit, scaled down so that its
  farthest point lies within 86 % of the radius of the image's inscribed circle
  (the projectors assume a body that never touches the border).  Pixels outside
  the body are exactly -1000 HU and labelled ``"air"``.
* **Texture.** Organs are not piecewise constant: each tissue gets its own
  zero-mean, Gaussian-filtered white-noise field whose correlation length (mm)
  and amplitude (HU standard deviation) are parameters (:data:`TEXTURE`,
  ``make_phantom(texture=...)``), generated on a millimetre grid from the
  seeded generator and sampled bilinearly at pixel centres, so it is resolution
  consistent.
* **Partial volume.** The HU image (not the labels, which stay hard) is blurred
  with a Gaussian of 0.5 pixel inside the body; HU is clipped below at -1000.
* **Lesions.** ``lesion_kind`` chooses them (:data:`LESION_KINDS` lists sizes,
  contrasts and HU): liver metastases (abdomen default) or masses; lung nodules
  (chest default, solid or ground-glass), emboli in enhanced pulmonary
  arteries, a mix of both, or lung masses. ``n_lesions`` (default 1-3 in the
  abdomen, 1-4 in the chest) are placed inside their host (at least 2.5 mm from
  any other tissue for organ lesions; emboli inside distinct arteries of at
  least 5 mm) and never touch each other; a lesion that does not fit is shrunk
  down to its kind's minimum size or left out. ``Phantom.boxes`` holds one xyxy
  box per lesion, ``Phantom.lesion_map`` its pixels; lesions too small to box
  at the requested size are not drawn (see :func:`make_phantom`).

Contrast phase and HU sources
-----------------------------
All values describe one consistent phase: **portal-venous contrast-enhanced CT
(about 70 s after injection)**, the phase of the Mayo/AAPM 2016 low-dose CT
challenge abdomen scans.  ``TISSUE_HU_RANGES`` gives the typical range per tissue;
the generator draws each tissue's base HU well inside its range.

* Unenhanced reference values (air -1000; fat -120..-80, commonly quoted -150..-50
  or -100..-50; muscle +35..+55; lung parenchyma -900..-700; bone: cancellous
  ~+150..+400, cortical ~+500..+1900): T. M. Buzug, *Computed Tomography*,
  Springer 2008; M. Prokop & M. Galanski, *Spiral and Multislice Computed
  Tomography of the Body*, Thieme 2003; the Hounsfield-scale tables of
  Radiopaedia ("Hounsfield unit") and Wikipedia ("Hounsfield scale").
* Portal-venous enhancement (liver parenchyma ~+50 HU above its unenhanced
  ~+55 HU, i.e. ~80..120 HU; aorta / portal vein ~150..250 HU; spleen slightly
  above liver; renal parenchyma ~120..200 HU in the late cortico-medullary /
  nephrographic phase; muscle +10..15 HU above unenhanced): K. T. Bae,
  "Intravenous contrast medium administration and scan timing at CT",
  *Radiology* 256(1):32-61, 2010; M. Kanematsu et al., "Portal venous-phase CT of
  the liver in patients without chronic liver damage", *Open J. Radiol.*
  3:112-116, 2013.
* ``heart`` (myocardium ~100 HU plus blood pool at vessel HU), ``soft_tissue``
  (bowel loops with content and wall, stomach, oesophagus, thecal sac: 20..80 HU)
  and ``lesion`` (liver lesions at liver +/- 10..55 HU; solid nodules and masses at
  soft-tissue HU; ground-glass nodules at -700..-400 HU; emboli at 20..60 HU) are
  modelling choices derived from the values above.
* The chest's pulmonary arteries are enhanced as in CT pulmonary angiography
  (160..330 HU per seed; the veins 155..185 HU), the phase in which pulmonary
  embolism is diagnosed (a non-enhancing filling defect of 20..60 HU).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from numbers import Integral, Real

import numpy as np
from scipy import ndimage

from ldct_nb.errors import ParameterError

__all__ = ["KINDS", "LESION_KINDS", "TEXTURE", "TISSUES", "TISSUE_HU_RANGES", "Phantom", "make_phantom"]

TISSUES: tuple[str, ...] = (
    "air",
    "fat",
    "muscle",
    "liver",
    "spleen",
    "kidney",
    "vessel",
    "bone",
    "bowel_gas",
    "lung",
    "heart",
    "soft_tissue",
    "lesion",
)
"""Tissue vocabulary shared by both kinds: label ``i`` means ``TISSUES[i]``.

``"air"`` is 0 and ``"lesion"`` is last.
"""

TISSUE_HU_RANGES: dict[str, tuple[float, float]] = {
    "air": (-1000.0, -1000.0),
    "fat": (-120.0, -80.0),
    "muscle": (35.0, 70.0),
    "liver": (80.0, 120.0),
    "spleen": (90.0, 130.0),
    "kidney": (100.0, 200.0),
    "vessel": (150.0, 340.0),
    "bone": (150.0, 1500.0),
    "bowel_gas": (-1000.0, -900.0),
    "lung": (-900.0, -700.0),
    "heart": (100.0, 200.0),
    "soft_tissue": (20.0, 80.0),
    "lesion": (-710.0, 180.0),
}
"""Typical HU range of each tissue in the portal-venous phase (sources: module docstring)."""

KINDS: tuple[str, ...] = ("abdomen", "chest")
"""Anatomical regions :func:`make_phantom` can draw."""

LESION_KINDS: dict[str, tuple[str, ...]] = {
    "abdomen": ("metastasis", "mass"),
    "chest": ("nodule", "embolism", "mixed", "mass"),
}
"""Lesion kinds :func:`make_phantom` can draw per anatomy (the first is the default):

* ``metastasis`` (abdomen): liver lesions of 10-40 mm, |contrast| 16-55 HU
  against the liver, hypodense with probability 0.75 (Mayo-2016-like).
* ``mass`` (abdomen): liver masses of 15-60 mm, |contrast| 10-40 HU, hypodense
  with probability 0.75 (the L-CT-A / L-CT-G analogue asked for in issue 10).
* ``nodule`` (chest): lung nodules, diameter log-uniform in 3-30 mm (the
  Fleischner range of nodules, up to the 30 mm where a "mass" begins), solid
  (0-60 HU, probability 0.6) or ground-glass (-700 to -400 HU).
* ``embolism`` (chest): a filling defect (clot, 20-60 HU) inside an enhanced
  pulmonary artery (210-330 HU, CT pulmonary angiography), 40-85 % of the
  artery's width, in arteries of at least 5 mm chosen with probability
  proportional to their cross-section (PE-CT analogue).
* ``mixed`` (chest): each lesion an embolism or a nodule with probability 1/2.
* ``mass`` (chest): solid lung masses of 15-60 mm (20-60 HU), the anatomy of
  LIDnet Table 1's L-CT sets (lung adenocarcinoma / carcinoma).

Sizes are diameters of the drawn (super)ellipse; measured contrasts are lower
for small lesions because of partial volume (the 0.5 pixel blur)."""

_CODE: dict[str, int] = {name: i for i, name in enumerate(TISSUES)}
_MIN_SIZE = 32
_MAX_LESIONS = 20
_MIN_LESION_PIXELS = 4  # a lesion is labelled and boxed only with at least this many pixels ...
_MIN_BOX_SIDE_PX = 2  # ... and a box at least this many pixels wide and high
_MIN_EMBOLISM_ARTERY_MM = 5.0  # emboli go into arteries at least this wide
_FIT_FRACTION = 0.86  # farthest body point, as a fraction of the inscribed radius
_PARTIAL_VOLUME_SIGMA_PX = 0.5
_LESION_MARGIN_MM = 2.5  # lesion to non-parenchyma clearance
_LESION_GAP_MM = 3.0  # lesion to lesion clearance

TEXTURE: dict[str, tuple[float, float]] = {
    "fat": (5.0, 5.0),
    "muscle": (3.0, 4.0),
    "liver": (4.0, 4.0),
    "spleen": (4.0, 4.0),
    "kidney": (3.0, 6.0),
    "vessel": (4.0, 3.0),
    "bone": (1.5, 25.0),
    "bowel_gas": (3.0, 6.0),
    "lung": (2.5, 15.0),
    "heart": (4.0, 4.0),
    "soft_tissue": (3.0, 5.0),
    "lesion": (3.0, 2.0),
}
"""Default texture of each tissue: ``(correlation length in mm, standard deviation in HU)``
of a Gaussian-filtered white-noise field (the filter's sigma is the correlation
length). Override per tissue with ``make_phantom(..., texture={...})``. The
parenchymal values (liver 4 mm / 4 HU, lung 2.5 mm / 15 HU, muscle 3 mm / 4 HU)
are modelling choices that keep organ heterogeneity below the quantum noise of
routine-dose CT, as on clinical images; notebook 01 sets phantom NDCT patches
beside the real CT slice shipped with pydicom (``CT_small.dcm``) and measures
both."""


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, eq=False)
class Phantom:
    """One synthetic axial CT slice with its ground truth.

    Attributes:
        hu: float32 ``(H, W)`` image in Hounsfield units.
        labels: uint8 ``(H, W)`` tissue labels, indexes into :attr:`tissues`.
        boxes: float32 ``(N, 4)`` lesion boxes ``(x1, y1, x2, y2)`` in pixels,
            ``x`` = column, ``y`` = row, ``x2``/``y2`` exclusive (a lesion on
            columns 10..19 has ``x1 = 10, x2 = 20``); ``N`` may be 0.
        tissues: the tissue vocabulary, equal to :data:`TISSUES`.
        kind: ``"abdomen"`` or ``"chest"``.
        seed: the seed it was drawn from.
        pixel_size_mm: pixel edge length in mm (``fov_mm / size``).
        lesion_map: int16 ``(H, W)`` lesion instances: 0 outside lesions, ``k``
            on the pixels of the lesion whose box is ``boxes[k - 1]``. Exactly
            the pixels labelled ``"lesion"`` are non-zero (see :func:`make_phantom`).
        lesion_kind: the kind of lesions drawn (:data:`LESION_KINDS`).
        lesion_hosts: the tissue each lesion lies in (``"liver"``, ``"lung"``,
            ``"vessel"`` for an embolus), in lesion order.
    """

    hu: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    tissues: tuple[str, ...]
    kind: str
    seed: int
    pixel_size_mm: float
    lesion_map: np.ndarray | None = None
    lesion_kind: str = ""
    lesion_hosts: tuple[str, ...] = ()

    def __repr__(self) -> str:
        h, w = self.hu.shape
        return (
            f"Phantom(kind={self.kind!r}, lesion_kind={self.lesion_kind!r}, seed={self.seed}, size={h}x{w}, "
            f"pixel_size_mm={self.pixel_size_mm:.3f}, lesions={len(self.boxes)}, "
            f"hu=[{float(self.hu.min()):.0f}, {float(self.hu.max()):.0f}])"
        )

    def mask(self, tissue: str) -> np.ndarray:
        """Boolean ``(H, W)`` mask of the pixels labelled ``tissue``.

        Raises:
            ParameterError: ``tissue`` is not one of :attr:`tissues`.
        """
        if not isinstance(tissue, str) or tissue not in self.tissues:
            raise ParameterError(
                f"tissue must be one of {', '.join(self.tissues)}; got {tissue!r}"
            )
        return self.labels == self.tissues.index(tissue)


@dataclass(frozen=True)
class _Shape:
    """One structure: a rotated superellipse in mm with optional wobble and clipping.

    ``hu`` is the absolute base HU, or an offset added to the HU underneath when
    ``relative`` is true (liver lesions).  ``lesion`` is the 1-based lesion index
    (0 for anatomy).  ``within`` shapes clip this one (logical and).
    """

    tissue: str
    hu: float
    cx: float
    cy: float
    a: float
    b: float
    angle: float = 0.0
    power: float = 2.0
    wobble: tuple[tuple[int, float, float], ...] = ()
    within: tuple["_Shape", ...] = ()
    relative: bool = False
    lesion: int = 0
    outline: bool = False  # the body outline: the only shape painted over air
    over: tuple[str, ...] = ()  # if given, paints only over these tissues (a clot inside its artery)

    def bound(self) -> float:
        """Radius (mm) of a disc around the centre that contains the shape."""
        r = max(self.a, self.b)
        if self.power > 2.0:
            r *= 2.0 ** (0.5 - 1.0 / self.power)
        return r * (1.0 + sum(abs(amp) for _, amp, _ in self.wobble))

    def mask(self, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        """Boolean mask of the points ``(xx, yy)`` (mm, broadcastable) inside the shape."""
        m = _ellipse_mask(
            xx, yy, self.cx, self.cy, self.a, self.b, self.angle, self.power, self.wobble
        )
        for outer in self.within:
            m &= outer.mask(xx, yy)
        return m

    def moved(self, scale: float, rotation: float) -> "_Shape":
        """The shape after scaling by ``scale`` and rotating by ``rotation`` (rad) about the origin."""
        c, s = math.cos(rotation), math.sin(rotation)
        return replace(
            self,
            cx=scale * (c * self.cx - s * self.cy),
            cy=scale * (s * self.cx + c * self.cy),
            a=scale * self.a,
            b=scale * self.b,
            angle=self.angle + rotation,
            within=tuple(w.moved(scale, rotation) for w in self.within),
        )


@dataclass
class _Scene:
    """Anatomy of one phantom in mm before lesions: shapes in painting order."""

    shapes: list[_Shape] = field(default_factory=list)
    lesion_organ: str = "liver"
    arteries: list[int] = field(default_factory=list)  # indices in shapes of enhanced pulmonary arteries

    def add(self, shape: _Shape) -> _Shape:
        self.shapes.append(shape)
        return shape


# ----------------------------------------------------------------------- geometry


def _ellipse_mask(
    xx: np.ndarray,
    yy: np.ndarray,
    cx: float,
    cy: float,
    a: float,
    b: float,
    angle: float,
    power: float = 2.0,
    wobble: tuple[tuple[int, float, float], ...] = (),
) -> np.ndarray:
    """Points inside a rotated (super)ellipse.

    Args:
        xx, yy: point coordinates (mm), broadcastable against each other.
        cx, cy: centre (mm).
        a, b: semi-axes (mm) along the rotated x and y axes.
        angle: rotation (rad), positive from +x towards +y (image rows, downward).
        power: superellipse exponent ``|u|^p + |v|^p <= 1`` (2 = ellipse).
        wobble: ``(k, amplitude, phase)`` terms modulating the boundary radius
            ``1 + sum amplitude * cos(k * theta + phase)``.

    Returns:
        Boolean array of the broadcast shape.
    """
    c, s = math.cos(angle), math.sin(angle)
    dx = xx - cx
    dy = yy - cy
    u = (dx * c + dy * s) / a
    v = (dy * c - dx * s) / b
    if power == 2.0:
        r2 = u * u + v * v
    else:
        r2 = (np.abs(u) ** power + np.abs(v) ** power) ** (2.0 / power)
    if not wobble:
        return r2 <= 1.0
    theta = np.arctan2(v, u)
    limit = np.ones_like(theta)
    for k, amp, phase in wobble:
        limit += amp * np.cos(k * theta + phase)
    return r2 <= limit * limit


def _superellipse_point(a: float, b: float, p: float, theta: float) -> tuple[float, float]:
    """Boundary point of ``|x/a|^p + |y/b|^p = 1`` at parameter ``theta``."""
    c, s = math.cos(theta), math.sin(theta)
    return (
        a * math.copysign(abs(c) ** (2.0 / p), c),
        b * math.copysign(abs(s) ** (2.0 / p), s),
    )


def _superellipse_rmax(a: float, b: float, p: float) -> float:
    """Largest distance from the centre to the boundary of a superellipse."""
    t = np.linspace(0.0, 2.0 * np.pi, 721)
    c, s = np.cos(t), np.sin(t)
    x = a * np.abs(c) ** (2.0 / p)
    y = b * np.abs(s) ** (2.0 / p)
    return float(np.sqrt(x * x + y * y).max())


def _wobble(rng: np.random.Generator, amplitude: float, orders: tuple[int, ...] = (2, 3, 4)) -> tuple[tuple[int, float, float], ...]:
    """Random smooth boundary modulation with total amplitude at most ``amplitude``."""
    share = amplitude / len(orders)
    return tuple(
        (k, float(rng.uniform(0.3, 1.0) * share), float(rng.uniform(0.0, 2.0 * np.pi)))
        for k in orders
    )


def _point_in_ellipse(
    rng: np.random.Generator, cx: float, cy: float, a: float, b: float, angle: float, rho_max: float
) -> tuple[float, float, float]:
    """Uniform random point inside the ellipse scaled by ``rho_max``; also returns its ``rho``."""
    rho = rho_max * math.sqrt(rng.uniform(0.0, 1.0))
    phi = rng.uniform(0.0, 2.0 * np.pi)
    u, v = rho * a * math.cos(phi), rho * b * math.sin(phi)
    c, s = math.cos(angle), math.sin(angle)
    return cx + c * u - s * v, cy + s * u + c * v, rho


def _deg(rng: np.random.Generator, lo: float, hi: float) -> float:
    """Uniform random angle in degrees, returned in radians."""
    return math.radians(rng.uniform(lo, hi))


# ------------------------------------------------------------------------ anatomy


def _body_wall(
    scene: _Scene,
    a: float,
    b: float,
    p: float,
    fat_t: float,
    wall_t: float,
    hu: dict[str, float],
) -> tuple[_Shape, float, float]:
    """Body outline (subcutaneous fat), muscle wall and the inner cavity (fat).

    Returns the cavity shape and its semi-axes.
    """
    scene.add(_Shape("fat", hu["fat"], 0.0, 0.0, a, b, power=p, outline=True))
    scene.add(_Shape("muscle", hu["muscle"], 0.0, 0.0, a - fat_t, b - fat_t, power=p))
    ai, bi = a - fat_t - wall_t, b - fat_t - wall_t
    cavity = scene.add(_Shape("fat", hu["fat"], 0.0, 0.0, ai, bi, power=p))
    return cavity, ai, bi


def _spine(
    rng: np.random.Generator, scene: _Scene, cy: float, hu: dict[str, float], thoracic: bool
) -> tuple[float, float]:
    """Paraspinal muscles and one vertebra (body with cortical rim, arch, canal, processes).

    Returns the semi-axes ``(rx, ry)`` of the vertebral body.
    """
    rx = rng.uniform(14.0, 18.0) if thoracic else rng.uniform(19.0, 24.0)
    ry = rng.uniform(13.0, 16.0) if thoracic else rng.uniform(15.0, 19.0)
    dx = rng.uniform(24.0, 30.0)
    pa, pb = rng.uniform(17.0, 23.0), rng.uniform(19.0, 25.0)
    for side in (-1.0, 1.0):
        scene.add(_Shape("muscle", hu["muscle"], side * dx, cy + ry + 26.0, pa, pb))
    if not thoracic:  # psoas beside the vertebral body
        for side in (-1.0, 1.0):
            scene.add(
                _Shape("muscle", hu["muscle"], side * (rx + rng.uniform(9.0, 13.0)), cy - 2.0,
                       rng.uniform(9.0, 13.0), rng.uniform(12.0, 16.0), angle=side * _deg(rng, 10, 25))
            )
    cortical = rng.uniform(800.0, 1100.0)
    scene.add(_Shape("bone", cortical, 0.0, cy, rx, ry))
    scene.add(_Shape("bone", rng.uniform(170.0, 260.0), 0.0, cy, rx - 2.5, ry - 2.5))
    arch = rng.uniform(500.0, 800.0)
    scene.add(_Shape("bone", arch, 0.0, cy + ry + 11.0, 13.0, 11.0))
    scene.add(_Shape("soft_tissue", hu["soft_tissue"], 0.0, cy + ry + 10.0, 8.5, 7.5))
    scene.add(_Shape("bone", arch, 0.0, cy + ry + 31.0, 4.0, 12.0))
    for side in (-1.0, 1.0):
        scene.add(_Shape("bone", arch, side * 22.0, cy + ry + 8.0, 13.0, 4.0, angle=side * _deg(rng, 5, 25)))
    return rx, ry


def _ribs(
    rng: np.random.Generator,
    scene: _Scene,
    ra: float,
    rb: float,
    p: float,
    n: int,
    excluded: tuple[tuple[float, float], ...],
) -> None:
    """``n`` small oval rib cross-sections on the superellipse ``(ra, rb, p)``.

    ``excluded`` lists ``(centre_deg, half_width_deg)`` sectors without ribs
    (angles from +x towards +y, i.e. 90 = posterior midline).
    """
    placed = 0
    while placed < n:
        t = rng.uniform(0.0, 360.0)
        if any(abs((t - c + 180.0) % 360.0 - 180.0) < w for c, w in excluded):
            continue
        th = math.radians(t)
        x, y = _superellipse_point(ra, rb, p, th)
        tangent = math.atan2(rb * math.cos(th), -ra * math.sin(th))
        scene.add(
            _Shape("bone", rng.uniform(450.0, 750.0), x, y, rng.uniform(5.0, 8.0),
                   rng.uniform(3.0, 4.5), angle=tangent)
        )
        placed += 1


def _abdomen(rng: np.random.Generator, hu: dict[str, float]) -> _Scene:
    """Upper-abdomen slice (liver, spleen, kidneys, stomach, bowel, spine, ribs) in mm."""
    scene = _Scene(lesion_organ="liver")
    a, b, p = rng.uniform(135.0, 165.0), rng.uniform(100.0, 125.0), rng.uniform(2.2, 2.8)
    fat_t, wall_t = rng.uniform(8.0, 26.0), rng.uniform(7.0, 12.0)
    cavity, ai, bi = _body_wall(scene, a, b, p, fat_t, wall_t, hu)

    # bowel loops (fluid / wall = soft tissue), some with gas
    for _ in range(int(rng.integers(4, 9))):
        r = rng.uniform(8.0, 17.0)
        loop = scene.add(
            _Shape("soft_tissue", hu["soft_tissue"], rng.uniform(-0.2, 0.55) * ai,
                   rng.uniform(-0.75, 0.1) * bi, r, r * rng.uniform(0.6, 1.0),
                   angle=_deg(rng, 0, 180), within=(cavity,))
        )
        if rng.uniform() < 0.5:
            g = rng.uniform(0.4, 0.7)
            scene.add(
                _Shape("bowel_gas", hu["bowel_gas"], loop.cx, loop.cy - 0.3 * loop.b,
                       g * loop.a, g * loop.b, angle=loop.angle, within=(loop,))
            )

    # liver: right lobe (image left) and left lobe crossing the midline anteriorly
    s = rng.uniform(0.88, 1.12)
    right = scene.add(
        _Shape("liver", hu["liver"], rng.uniform(-0.44, -0.36) * ai, rng.uniform(-0.06, 0.04) * bi,
               0.50 * ai * s, 0.74 * bi * s, angle=_deg(rng, -15, 15),
               wobble=_wobble(rng, 0.06), within=(cavity,))
    )
    sl = rng.uniform(0.6, 1.15)
    scene.add(
        _Shape("liver", hu["liver"], rng.uniform(-0.08, 0.04) * ai, rng.uniform(-0.55, -0.45) * bi,
               0.32 * ai * sl, 0.24 * bi * sl, angle=_deg(rng, -25, -5),
               wobble=_wobble(rng, 0.05), within=(cavity,))
    )
    # portal / hepatic vessels inside the right lobe: one large, several small elongated
    for i in range(int(rng.integers(4, 8))):
        x, y, _ = _point_in_ellipse(rng, right.cx, right.cy, right.a, right.b, right.angle, 0.7)
        r = rng.uniform(5.0, 7.5) if i == 0 else rng.uniform(2.0, 4.0)
        scene.add(
            _Shape("vessel", rng.uniform(160.0, 190.0), x, y, r * rng.uniform(1.0, 4.0), r,
                   angle=_deg(rng, 0, 180), within=(right,))
        )

    # stomach with a gas bubble anteriorly (patient's left = image right)
    stomach = scene.add(
        _Shape("soft_tissue", hu["soft_tissue"], rng.uniform(0.25, 0.35) * ai,
               rng.uniform(-0.35, -0.2) * bi, rng.uniform(0.18, 0.25) * ai, rng.uniform(0.17, 0.23) * bi,
               angle=_deg(rng, -30, 10), wobble=_wobble(rng, 0.05), within=(cavity,))
    )
    scene.add(
        _Shape("bowel_gas", hu["bowel_gas"], stomach.cx, stomach.cy - 0.45 * stomach.b,
               0.6 * stomach.a, 0.4 * stomach.b, angle=stomach.angle, within=(stomach,))
    )
    # spleen, posterior on the image right
    scene.add(
        _Shape("spleen", hu["spleen"], rng.uniform(0.58, 0.66) * ai, rng.uniform(0.22, 0.38) * bi,
               rng.uniform(0.14, 0.19) * ai, rng.uniform(0.30, 0.40) * bi, angle=_deg(rng, -45, -20),
               wobble=_wobble(rng, 0.05), within=(cavity,))
    )

    cy_vb = b - fat_t - rng.uniform(60.0, 72.0)
    # kidneys, hilum facing antero-medially, with renal sinus fat
    for side in (-1.0, 1.0):
        kx = side * rng.uniform(52.0, 62.0)
        ky = cy_vb + rng.uniform(3.0, 14.0)
        ka, kb = rng.uniform(18.0, 23.0), rng.uniform(26.0, 33.0)
        kang = -side * _deg(rng, 20, 40)
        kidney = scene.add(
            _Shape("kidney", hu["kidney"], kx, ky, ka, kb, angle=kang,
                   wobble=_wobble(rng, 0.04), within=(cavity,))
        )
        scene.add(
            _Shape("fat", hu["fat"], kx - side * 0.55 * ka, ky - 0.1 * kb, 0.35 * ka, 0.3 * kb,
                   angle=kang, within=(kidney,))
        )
    _, ry = _spine(rng, scene, cy_vb, hu, thoracic=False)

    # great vessels: aorta (left-anterior of the spine), IVC (right), SMA and SMV
    r_ao = rng.uniform(9.0, 12.5)
    ax_, ay_ = rng.uniform(4.0, 12.0), cy_vb - ry - r_ao - rng.uniform(1.0, 4.0)
    scene.add(_Shape("vessel", rng.uniform(165.0, 200.0), ax_, ay_, r_ao, r_ao))
    scene.add(
        _Shape("vessel", rng.uniform(155.0, 175.0), -rng.uniform(22.0, 30.0), cy_vb - ry - rng.uniform(6.0, 12.0),
               rng.uniform(11.0, 15.0), rng.uniform(7.0, 10.0), angle=_deg(rng, -10, 10))
    )
    smy = ay_ - r_ao - rng.uniform(12.0, 20.0)
    scene.add(_Shape("vessel", rng.uniform(165.0, 200.0), ax_ - 2.0, smy, 3.5, 3.5, within=(cavity,)))
    scene.add(_Shape("vessel", rng.uniform(160.0, 185.0), ax_ - 13.0, smy - 2.0, 5.0, 4.5, within=(cavity,)))
    ring = wall_t * 0.5 + fat_t
    _ribs(rng, scene, a - ring, b - ring, p, int(rng.integers(6, 11)), ((90.0, 35.0), (270.0, 50.0)))
    return scene


def _chest(rng: np.random.Generator, hu: dict[str, float]) -> _Scene:
    """Heart-level chest slice (lungs with vessels, heart, aorta, spine, sternum, ribs) in mm."""
    scene = _Scene(lesion_organ="lung")
    a, b, p = rng.uniform(140.0, 170.0), rng.uniform(100.0, 125.0), rng.uniform(2.3, 2.9)
    fat_t, wall_t = rng.uniform(6.0, 20.0), rng.uniform(9.0, 15.0)
    cavity, ai, bi = _body_wall(scene, a, b, p, fat_t, wall_t, hu)

    lungs = []
    for side in (-1.0, 1.0):
        lungs.append(
            scene.add(
                _Shape("lung", hu["lung"], side * rng.uniform(0.45, 0.50) * ai, rng.uniform(0.0, 0.1) * bi,
                       rng.uniform(0.42, 0.48) * ai, rng.uniform(0.80, 0.88) * bi,
                       angle=_deg(rng, -6, 6), wobble=_wobble(rng, 0.05), within=(cavity,))
            )
        )
    # pulmonary vessels: thicker near the hilum, oriented radially from it. About half
    # are arteries, enhanced as in CT pulmonary angiography (hu["pulmonary_artery"],
    # 210-330 HU); the veins stay at 155-185 HU. Each lung also gets two or three
    # large hilar (interlobar / lower-lobe) arteries of 8-14 mm.
    for side, lung in zip((-1.0, 1.0), lungs):
        hx, hy = lung.cx - side * 0.8 * lung.a, lung.cy - 0.05 * lung.b
        for _ in range(int(rng.integers(2, 4))):
            r = rng.uniform(4.0, 7.0)
            x = hx + side * rng.uniform(0.2, 0.4) * lung.a
            y = hy + rng.uniform(0.0, 0.45) * lung.b  # lower-lobe arteries, posterior to the heart
            scene.add(
                _Shape("vessel", hu["pulmonary_artery"] + rng.uniform(-10.0, 10.0), x, y,
                       r * rng.uniform(1.0, 2.0), r, angle=math.atan2(y - hy, x - hx) + _deg(rng, -20, 20),
                       within=(lung,))
            )
            scene.arteries.append(len(scene.shapes) - 1)
        for _ in range(int(rng.integers(12, 22))):
            x, y, rho = _point_in_ellipse(rng, lung.cx, lung.cy, lung.a, lung.b, lung.angle, 0.92)
            d = math.hypot(x - hx, y - hy) / (2.0 * lung.a)
            r = 1.2 + 4.0 * max(0.0, 1.0 - d) ** 1.5 * rng.uniform(0.6, 1.2)
            artery = rng.uniform() < 0.5
            scene.add(
                _Shape("vessel", hu["pulmonary_artery"] + rng.uniform(-10.0, 10.0) if artery
                       else rng.uniform(155.0, 185.0), x, y, r * rng.uniform(1.0, 4.0), r,
                       angle=math.atan2(y - hy, x - hx), within=(lung,))
            )
            if artery:
                scene.arteries.append(len(scene.shapes) - 1)

    # heart in pericardial fat: myocardium with left and right ventricular blood pools
    hx, hy = rng.uniform(0.08, 0.18) * ai, rng.uniform(-0.32, -0.2) * bi
    ha, hb = rng.uniform(0.32, 0.40) * ai, rng.uniform(0.40, 0.50) * bi
    hang = _deg(rng, -40, -20)
    scene.add(_Shape("fat", hu["fat"], hx, hy, ha + 5.0, hb + 5.0, angle=hang, within=(cavity,)))
    myo = scene.add(_Shape("heart", hu["myocardium"], hx, hy, ha, hb, angle=hang, within=(cavity,)))
    c, s = math.cos(hang), math.sin(hang)
    for (u, v, fa, fb) in ((0.25, 0.1, 0.42, 0.45), (-0.3, -0.15, 0.45, 0.42)):
        scene.add(
            _Shape("heart", hu["blood"], hx + c * u * ha - s * v * hb, hy + s * u * ha + c * v * hb,
                   fa * ha, fb * hb, angle=hang, within=(myo,))
        )

    cy_vb = b - fat_t - rng.uniform(52.0, 62.0)
    rx, ry = _spine(rng, scene, cy_vb, hu, thoracic=True)
    r_ao = rng.uniform(10.0, 14.0)
    scene.add(
        _Shape("vessel", rng.uniform(160.0, 200.0), rx + r_ao * rng.uniform(0.3, 0.7),
               cy_vb - ry * rng.uniform(0.4, 0.9), r_ao, r_ao)
    )
    scene.add(_Shape("vessel", rng.uniform(155.0, 175.0), -rx * 0.8, cy_vb - ry - 3.0, 4.0, 4.0))
    scene.add(_Shape("soft_tissue", hu["soft_tissue"], rng.uniform(-4.0, 2.0), cy_vb - ry - 9.0, 8.0, 6.0))

    scene.add(
        _Shape("bone", rng.uniform(450.0, 700.0), 0.0, -(b - fat_t - 0.5 * wall_t),
               rng.uniform(12.0, 16.0), rng.uniform(5.0, 7.0))
    )
    ring = wall_t * 0.5 + fat_t
    _ribs(rng, scene, a - ring, b - ring, p, int(rng.integers(10, 15)), ((90.0, 20.0), (270.0, 22.0)))
    return scene


def _base_hu(rng: np.random.Generator) -> dict[str, float]:
    """Per-seed base HU of each tissue, drawn well inside ``TISSUE_HU_RANGES``."""
    return {
        "fat": rng.uniform(-108.0, -92.0),
        "muscle": rng.uniform(45.0, 60.0),
        "liver": rng.uniform(95.0, 110.0),
        "spleen": rng.uniform(105.0, 120.0),
        "kidney": rng.uniform(140.0, 175.0),
        "bowel_gas": rng.uniform(-985.0, -960.0),
        "lung": rng.uniform(-870.0, -800.0),
        "myocardium": rng.uniform(100.0, 115.0),
        "blood": rng.uniform(140.0, 170.0),
        "soft_tissue": rng.uniform(30.0, 55.0),
        "pulmonary_artery": rng.uniform(160.0, 330.0),
    }


# ----------------------------------------------------------------------- lesions


def _grid(n: int, spacing: float, origin: float) -> np.ndarray:
    """Pixel-centre coordinates (mm) of ``n`` pixels of ``spacing`` starting at ``origin``."""
    return origin + (np.arange(n, dtype=np.float64) + 0.5) * spacing


def _organ_lesion(rng: np.random.Generator, lesion_kind: str, organ: str, scale: float) -> tuple[float, float, float, float, bool]:
    """Draw one organ lesion: ``(diameter, minor, hu, min_minor, relative)`` in mm / HU.

    See :data:`LESION_MODELS` for the distributions and their sources.
    """
    if organ == "liver":
        lo, hi = (10.0, 40.0) if lesion_kind == "metastasis" else (15.0, 60.0)
        c_lo, c_hi = (16.0, 55.0) if lesion_kind == "metastasis" else (10.0, 40.0)
        d = rng.uniform(lo, hi) * scale
        minor = max(lo * scale, d * rng.uniform(0.75, 1.0))
        contrast = rng.uniform(c_lo, c_hi) * (-1.0 if rng.uniform() < 0.75 else 1.0)
        return d, minor, contrast, lo * scale, True
    if lesion_kind == "mass":  # solid lung mass
        d = rng.uniform(15.0, 60.0) * scale
        return d, d * rng.uniform(0.8, 1.0), rng.uniform(20.0, 60.0), 15.0 * scale * 0.8, False
    # lung nodule: log-uniform diameter 3-30 mm, solid (60 %) or ground-glass (40 %)
    d = math.exp(rng.uniform(math.log(3.0), math.log(30.0))) * scale
    solid = rng.uniform() < 0.6
    hu = rng.uniform(0.0, 60.0) if solid else rng.uniform(-700.0, -400.0)
    return d, d * rng.uniform(0.8, 1.0), hu, 3.0 * scale * 0.8, False


def _visible_fraction(shape: _Shape, labels: np.ndarray, coords: np.ndarray, spacing: float) -> float:
    """Fraction of ``shape``'s area still labelled with its tissue in ``labels`` (not painted over)."""
    r = shape.bound()
    lo = coords[0] - 0.5 * spacing
    j0, j1 = max(0, int((shape.cx - r - lo) / spacing)), min(len(coords), int((shape.cx + r - lo) / spacing) + 1)
    i0, i1 = max(0, int((shape.cy - r - lo) / spacing)), min(len(coords), int((shape.cy + r - lo) / spacing) + 1)
    m = shape.mask(coords[None, j0:j1], coords[i0:i1, None])
    if not m.any():
        return 0.0
    return float((labels[i0:i1, j0:j1][m] == _CODE[shape.tissue]).mean())


def _place_lesions(
    rng: np.random.Generator, scene: _Scene, n: int, fov_mm: float, scale: float, lesion_kind: str
) -> list[_Shape]:
    """Lesion shapes of ``lesion_kind`` (see :data:`LESION_KINDS`), placed in mm.

    Organ lesions (metastasis, mass, nodule) go inside the scene's lesion organ:
    the organ is rasterised at a fixed physical spacing (independent of the
    output size) and each lesion centre is drawn among the grid points whose
    distance to anything that is not organ parenchyma is at least its radius
    plus ``_LESION_MARGIN_MM`` and that keep ``_LESION_GAP_MM`` from earlier
    lesions. Emboli go inside distinct enhanced pulmonary arteries. With
    ``"mixed"`` each lesion is an embolism or a nodule with equal probability.
    """
    organ = scene.lesion_organ
    spacing = max(1.0, fov_mm / 400.0)
    n_grid = int(math.ceil(fov_mm / spacing))
    labels, _, _ = _paint(scene.shapes, n_grid, spacing, -0.5 * n_grid * spacing)
    coords = _grid(n_grid, spacing, -0.5 * n_grid * spacing)
    inside = labels == _CODE[organ]
    dist = ndimage.distance_transform_edt(inside) * spacing
    xs, ys = coords[None, :], coords[:, None]
    arteries = [scene.shapes[i] for i in scene.arteries
                if 2.0 * scene.shapes[i].b >= _MIN_EMBOLISM_ARTERY_MM * scale
                and _visible_fraction(scene.shapes[i], labels, coords, spacing) >= 0.7]
    used: set[int] = set()
    placed: list[_Shape] = []
    for k in range(n):
        kind = lesion_kind
        if kind == "mixed":
            kind = "embolism" if rng.uniform() < 0.5 else "nodule"
        wob = _wobble(rng, 0.04, (2, 3))
        angle = _deg(rng, 0, 180)
        pick = rng.uniform()
        if kind == "embolism":
            frac, elong = rng.uniform(0.3, 0.8), rng.uniform(1.0, 2.0)
            off_minor, off_major = rng.uniform(-1.0, 1.0), rng.uniform(-0.5, 0.5)
            clot_hu = rng.uniform(20.0, 60.0)
            free = [i for i in range(len(arteries)) if i not in used]
            if not free:
                continue
            weight = np.cumsum([arteries[j].a * arteries[j].b for j in free])  # larger arteries more often
            i = free[min(int(np.searchsorted(weight, pick * weight[-1])), len(free) - 1)]
            art = arteries[i]
            b = frac * art.b
            a = min(b * elong, art.a)
            c, s_ = math.cos(art.angle), math.sin(art.angle)
            u, v = off_major * (art.a - a), off_minor * (art.b - b)
            clot = _Shape("lesion", clot_hu, art.cx + c * u - s_ * v, art.cy + s_ * u + c * v, a, b,
                          angle=art.angle, within=(art,), lesion=k + 1, over=("vessel",))
            if any(math.hypot(clot.cx - o.cx, clot.cy - o.cy) < clot.bound() + o.bound() + _LESION_GAP_MM
                   for o in placed):
                continue
            used.add(i)
            placed.append(clot)
            continue
        d, minor, hu, min_minor, relative = _organ_lesion(rng, kind, organ, scale)
        shape = _Shape("lesion", hu, 0.0, 0.0, d / 2.0, minor / 2.0, angle=angle,
                       wobble=wob, relative=relative, lesion=k + 1)
        room = dist  # clearance (mm) from non-parenchyma and from earlier lesions
        for other in placed:
            room = np.minimum(room, np.hypot(xs - other.cx, ys - other.cy) - other.bound() - _LESION_GAP_MM)
        # shrink a lesion that does not fit anywhere to the largest that does
        fit = (float(room.max()) - _LESION_MARGIN_MM) / shape.bound()
        if fit < 1.0:
            shape = replace(shape, a=shape.a * fit, b=shape.b * fit)
            if 2.0 * shape.b < min_minor - 1e-9:
                continue
        candidates = np.flatnonzero(room >= shape.bound() + _LESION_MARGIN_MM - 1e-9)
        if candidates.size == 0:
            continue
        i, j = divmod(int(candidates[min(int(pick * candidates.size), candidates.size - 1)]), n_grid)
        placed.append(replace(shape, cx=float(coords[j]), cy=float(coords[i])))
    return [replace(shape, lesion=i + 1) for i, shape in enumerate(placed)]


# ---------------------------------------------------------------------- rendering


def _paint(
    shapes: list[_Shape], n: int, spacing: float, origin: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rasterise shapes in order on an ``n x n`` grid of pixel centres.

    Returns ``(labels uint8, base_hu float32, lesion_index int16)``.  Only the
    body outline may paint over air, so no structure extends the body.
    """
    coords = _grid(n, spacing, origin)
    labels = np.zeros((n, n), np.uint8)
    base = np.full((n, n), -1000.0, np.float32)
    lesion_id = np.zeros((n, n), np.int16)
    for shape in shapes:
        r = shape.bound()
        j0 = max(0, int(math.floor((shape.cx - r - origin) / spacing - 0.5)))
        j1 = min(n, int(math.ceil((shape.cx + r - origin) / spacing - 0.5)) + 1)
        i0 = max(0, int(math.floor((shape.cy - r - origin) / spacing - 0.5)))
        i1 = min(n, int(math.ceil((shape.cy + r - origin) / spacing - 0.5)) + 1)
        if j0 >= j1 or i0 >= i1:
            continue
        m = shape.mask(coords[None, j0:j1], coords[i0:i1, None])
        sub_l = labels[i0:i1, j0:j1]
        if not shape.outline:
            m &= sub_l != 0
        if shape.over:
            m &= np.isin(sub_l, [_CODE[t] for t in shape.over])
        sub_l[m] = _CODE[shape.tissue]
        sub_b = base[i0:i1, j0:j1]
        sub_b[m] = sub_b[m] + shape.hu if shape.relative else shape.hu
        lesion_id[i0:i1, j0:j1][m] = shape.lesion
    return labels, base, lesion_id


def _texture(
    rng: np.random.Generator, shape: tuple[int, int], corr_mm: float, pixel_mm: float, amplitude: float
) -> np.ndarray:
    """Smooth zero-mean random field: Gaussian-filtered white noise.

    Args:
        rng: the seeded generator.
        shape: grid shape.
        corr_mm: Gaussian filter sigma in mm (the correlation length).
        pixel_mm: grid spacing in mm.
        amplitude: standard deviation of the result (HU).
    """
    noise = rng.standard_normal(shape)
    smooth = ndimage.gaussian_filter(noise, corr_mm / pixel_mm, mode="wrap")
    std = float(smooth.std())
    return (smooth * (amplitude / std if std > 0 else 0.0)).astype(np.float32)


def _add_textures(
    rng: np.random.Generator, hu: np.ndarray, labels: np.ndarray, fov_mm: float, pixel_mm: float,
    texture: dict[str, tuple[float, float]],
) -> None:
    """Add each tissue's texture field in place (fields are drawn on mm grids, in ``TISSUES`` order)."""
    size = labels.shape[0]
    centres = _grid(size, pixel_mm, -0.5 * fov_mm)
    for tissue in TISSUES[1:]:
        corr, amp = texture[tissue]
        spacing = corr / 2.0
        n = int(math.ceil(fov_mm / spacing)) + 2
        field_ = _texture(rng, (n, n), corr, spacing, amp)
        rows, cols = np.nonzero(labels == _CODE[tissue])
        if rows.size == 0:
            continue
        # grid node k sits at -fov/2 + (k - 1) * spacing
        fr = (centres[rows] + 0.5 * fov_mm) / spacing + 1.0
        fc = (centres[cols] + 0.5 * fov_mm) / spacing + 1.0
        hu[rows, cols] += ndimage.map_coordinates(field_, [fr, fc], order=1, mode="nearest")


# --------------------------------------------------------------------------- API


def _check_int(name: str, value: object, minimum: int) -> int:
    """Validate an integer parameter (bool refused) with a lower bound."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ParameterError(
            f"{name} must be an int >= {minimum}; got {value!r} ({type(value).__name__})"
        )
    if value < minimum:
        raise ParameterError(f"{name} must be an int >= {minimum}; got {value}")
    return int(value)


def _check_texture(texture) -> dict[str, tuple[float, float]]:
    """Defaults of :data:`TEXTURE` with the user's overrides, validated."""
    out = dict(TEXTURE)
    if texture is None:
        return out
    if not isinstance(texture, dict):
        raise ParameterError(f"texture must be a dict tissue -> (correlation_mm, std_hu); got {type(texture).__name__}")
    for tissue, value in texture.items():
        if tissue not in TEXTURE:
            raise ParameterError(f"texture: unknown tissue {tissue!r}; tissues with texture: {', '.join(TEXTURE)}")
        ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(float(v)) for v in value)
        if not ok or not (value[0] > 0 and value[1] >= 0):
            raise ParameterError(f"texture[{tissue!r}] must be (correlation length in mm > 0, standard "
                                 f"deviation in HU >= 0); got {value!r}")
        out[tissue] = (float(value[0]), float(value[1]))
    return out


def make_phantom(
    size: int,
    seed: int,
    kind: str = "abdomen",
    *,
    fov_mm: float = 360.0,
    n_lesions: int | None = None,
    lesion_kind: str | None = None,
    texture: dict[str, tuple[float, float]] | None = None,
) -> Phantom:
    """Draw one synthetic axial CT slice with tissue labels and lesion boxes.

    The anatomy is a function of ``(seed, kind, fov_mm, n_lesions, lesion_kind)``
    only and is rasterised at ``size``: the same seed at 64 and at 512 pixels
    shows the same patient at two resolutions.  Deterministic: uses
    ``np.random.default_rng(seed)`` and no global state.

    **Boxes and labels agree.** A lesion is drawn (HU), labelled ``"lesion"``
    and boxed only if, at this ``size``, it covers at least
    ``_MIN_LESION_PIXELS`` (4) pixels and its box is at least
    ``_MIN_BOX_SIDE_PX`` (2) pixels wide and high; smaller lesions are left out
    of the image altogether (not left as an unlabelled blob a detector would be
    punished for finding). So every lesion in the label map has exactly one
    box and every box one lesion (:attr:`Phantom.lesion_map`); at coarse sizes
    the smallest nodules and emboli disappear.

    Args:
        size: image height = width in pixels, an int >= 32.
        seed: non-negative int.
        kind: ``"abdomen"`` (portal-venous upper abdomen with liver lesions) or
            ``"chest"`` (heart level, contrast-enhanced pulmonary arteries).
        fov_mm: reconstruction field of view (mm), > 0; ``pixel_size_mm = fov_mm / size``.
            A body larger than the field of view is scaled down to fit.
        n_lesions: number of lesions to place (0..20); default random from the
            seed, 1..3 for the abdomen and 1..4 for the chest.  Fewer are placed
            when the organ has no room left (or too few large arteries).
        lesion_kind: one of ``LESION_KINDS[kind]``; default its first entry
            (``"metastasis"`` for the abdomen, ``"nodule"`` for the chest).
        texture: per-tissue overrides of :data:`TEXTURE`,
            ``{tissue: (correlation_mm, std_hu)}``; ``std_hu = 0`` makes the
            tissue flat.

    Returns:
        The :class:`Phantom`.

    Raises:
        ParameterError: an argument is of the wrong type or out of range.
    """
    size = _check_int("size", size, _MIN_SIZE)
    seed = _check_int("seed", seed, 0)
    if not isinstance(kind, str) or kind not in KINDS:
        raise ParameterError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if lesion_kind is None:
        lesion_kind = LESION_KINDS[kind][0]
    if not isinstance(lesion_kind, str) or lesion_kind not in LESION_KINDS[kind]:
        raise ParameterError(f"lesion_kind must be one of {', '.join(LESION_KINDS[kind])} for kind={kind!r}; "
                             f"got {lesion_kind!r}")
    if (
        isinstance(fov_mm, bool)
        or not isinstance(fov_mm, Real)
        or not math.isfinite(float(fov_mm))
        or fov_mm <= 0
    ):
        raise ParameterError(f"fov_mm must be a finite number > 0 (mm); got {fov_mm!r}")
    fov_mm = float(fov_mm)
    if n_lesions is not None:
        n_lesions = _check_int("n_lesions", n_lesions, 0)
        if n_lesions > _MAX_LESIONS:
            raise ParameterError(f"n_lesions must be <= {_MAX_LESIONS}; got {n_lesions}")
    textures = _check_texture(texture)

    rng = np.random.default_rng(seed)
    hu_base = _base_hu(rng)
    scene = _abdomen(rng, hu_base) if kind == "abdomen" else _chest(rng, hu_base)
    rotation = _deg(rng, -6.0, 6.0)
    body = scene.shapes[0]
    rmax = _superellipse_rmax(body.a, body.b, body.power)
    scale = min(1.0, _FIT_FRACTION * 0.5 * fov_mm / rmax)
    scene.shapes = [s.moved(scale, rotation) for s in scene.shapes]

    default_n = int(rng.integers(1, 4)) if kind == "abdomen" else int(rng.integers(1, 5))
    n = default_n if n_lesions is None else n_lesions
    lesions = _place_lesions(rng, scene, n, fov_mm, scale, lesion_kind)

    pixel_mm = fov_mm / size
    origin = -0.5 * fov_mm
    labels, hu, lesion_id = _paint(scene.shapes + lesions, size, pixel_mm, origin)
    visible = _visible_lesions(lesion_id, len(lesions))
    if len(visible) < len(lesions):  # the box / label rule: repaint without the invisible ones
        lesions = [replace(lesions[k - 1], lesion=i + 1) for i, k in enumerate(visible)]
        labels, hu, lesion_id = _paint(scene.shapes + lesions, size, pixel_mm, origin)
    _add_textures(rng, hu, labels, fov_mm, pixel_mm, textures)
    air = labels == 0
    hu = ndimage.gaussian_filter(hu, _PARTIAL_VOLUME_SIGMA_PX, mode="nearest")
    np.maximum(hu, -1000.0, out=hu)
    hu[air] = -1000.0

    boxes = _lesion_boxes(lesion_id, len(lesions))
    return Phantom(
        hu=hu.astype(np.float32, copy=False),
        labels=labels,
        boxes=boxes,
        tissues=TISSUES,
        kind=kind,
        seed=seed,
        pixel_size_mm=pixel_mm,
        lesion_map=lesion_id,
        lesion_kind=lesion_kind,
        lesion_hosts=tuple(shape.over[0] if shape.over else scene.lesion_organ for shape in lesions),
    )


def _visible_lesions(lesion_id: np.ndarray, n: int) -> list[int]:
    """Lesion indices (1-based) that pass the box / label rule at this raster."""
    keep = []
    if n:
        slices = ndimage.find_objects(lesion_id.astype(np.int32), max_label=n)
        for k, sl in enumerate(slices, start=1):
            if sl is None:
                continue
            rows, cols = sl
            if (int((lesion_id[sl] == k).sum()) >= _MIN_LESION_PIXELS
                    and rows.stop - rows.start >= _MIN_BOX_SIDE_PX and cols.stop - cols.start >= _MIN_BOX_SIDE_PX):
                keep.append(k)
    return keep


def _lesion_boxes(lesion_id: np.ndarray, n: int) -> np.ndarray:
    """Tight xyxy boxes (exclusive x2/y2) of lesions ``1..n``, in that order (all present)."""
    boxes = []
    if n:
        slices = ndimage.find_objects(lesion_id.astype(np.int32), max_label=n)
        for sl in slices:
            rows, cols = sl
            boxes.append((cols.start, rows.start, cols.stop, rows.stop))
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
