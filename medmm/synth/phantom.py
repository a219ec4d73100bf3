"""An anatomical chest CT phantom in Hounsfield units, with tissue and lobe labels.

The phantom is analytic: every structure is a shape in LPS millimetres (origin at the
carina, x to the patient's left, y posterior, z head-ward), evaluated at the centres of
the voxels of any grid, so the same patient can be rendered at any spacing or orientation.
Structures: body outline with subcutaneous fat and muscle, ribs, spine (vertebral bodies,
discs, canal, spinous processes), sternum, mediastinal fat, heart, aorta, trachea, main and
lobar bronchi, both lungs with a dependent density gradient and texture, a tapering
branching vessel tree from each hilum (:mod:`medmm.synth.vessels`), the oblique and
horizontal fissures (every lung voxel carries a lobe label), diaphragm domes with liver
below the right one, and the scanner table. Optional emphysema adds upper-lobe-predominant
low-attenuation areas.

Tissue values (unenhanced CT, means) follow standard references: air -1000; lung
parenchyma about -850 with an anterior-posterior gradient of ~50 HU (Verschakelen et al.,
Radiology 186:35, 1993, report -880 to -820 HU); fat -100 (-120..-80); muscle +45;
blood / unenhanced vessels and heart +40; liver +55..65; cancellous bone +200..+300;
cortical bone +700 and up (Hounsfield scale tables, e.g. Lamba et al., RadioGraphics 34:
1653, 2014; Brooks, Radiology 1977).

Example:
    >>> import numpy as np
    >>> from medmm.synth.phantom import PatientShape, build_phantom, phantom_geometry
    >>> rng = np.random.default_rng(0)
    >>> shape = PatientShape.sample(rng)
    >>> geom = phantom_geometry(shape, matrix=64, slice_thickness_mm=5.0)
    >>> ph = build_phantom(geom, shape, rng)                # doctest: +SKIP
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from scipy import ndimage

from medmm.grid import box_around, edge_fraction, segment_distance, world_grid
from medmm.synth.vessels import grow_vessel_trees, paint_segments
from medmm.types import Volume, VolumeGeometry

__all__ = [
    "TISSUE_HU",
    "Lobe",
    "PatientShape",
    "Phantom",
    "Tissue",
    "build_phantom",
    "phantom_geometry",
]


class Tissue(IntEnum):
    """Tissue label of each phantom voxel."""

    OUTSIDE = 0
    FAT = 1
    MUSCLE = 2
    CORTICAL_BONE = 3
    MARROW = 4
    LUNG = 5
    VESSEL = 6
    AIRWAY = 7
    SOFT_TISSUE = 8
    HEART = 9
    AORTA = 10
    LIVER = 11
    MEDIASTINAL_FAT = 12
    TABLE = 13
    DISC = 14
    NODULE = 15


class Lobe(IntEnum):
    """Lung lobe of each lung voxel (0 outside the lungs)."""

    NONE = 0
    RUL = 1
    RML = 2
    RLL = 3
    LUL = 4
    LLL = 5


TISSUE_HU: dict[Tissue, float] = {
    Tissue.OUTSIDE: -1000.0,
    Tissue.FAT: -100.0,
    Tissue.MUSCLE: 45.0,
    Tissue.CORTICAL_BONE: 750.0,
    Tissue.MARROW: 230.0,
    Tissue.LUNG: -850.0,  # mean; a gradient and texture are added
    Tissue.VESSEL: 40.0,
    Tissue.AIRWAY: -995.0,
    Tissue.SOFT_TISSUE: 40.0,
    Tissue.HEART: 40.0,
    Tissue.AORTA: 42.0,
    Tissue.LIVER: 58.0,
    Tissue.MEDIASTINAL_FAT: -95.0,
    Tissue.TABLE: 120.0,
    Tissue.DISC: 85.0,
    Tissue.NODULE: 30.0,
}

_SUPERELLIPSE_P = 2.4


@dataclass(frozen=True)
class PatientShape:
    """Body habitus of one synthetic patient.

    Attributes:
        scale: Overall skeletal size (1.0 = average adult).
        aspect: Left-right over anterior-posterior width factor.
        fat_mm: Subcutaneous fat thickness.
        muscle_mm: Chest wall muscle thickness.
        dome_right_mm: Height of the right diaphragm dome below the carina (positive down).
        dome_left_extra_mm: How much lower the left dome sits.
        emphysema: 0 (none) to 1 (severe) upper-lobe emphysema.
        seed: Drives the random parts (vessel tree, texture, fissure undulation).
    """

    scale: float = 1.0
    aspect: float = 1.0
    fat_mm: float = 15.0
    muscle_mm: float = 10.0
    dome_right_mm: float = 140.0
    dome_left_extra_mm: float = 15.0
    emphysema: float = 0.0
    seed: int = 0

    @classmethod
    def sample(cls, rng: np.random.Generator, emphysema_rate: float = 0.15) -> PatientShape:
        """Draw a plausible adult habitus."""
        return cls(
            scale=float(rng.uniform(0.85, 1.12)),
            aspect=float(rng.uniform(0.92, 1.1)),
            fat_mm=float(rng.gamma(4.0, 4.5)),
            muscle_mm=float(rng.uniform(7.0, 14.0)),
            dome_right_mm=float(rng.uniform(125.0, 160.0)),
            dome_left_extra_mm=float(rng.uniform(8.0, 25.0)),
            emphysema=float(rng.uniform(0.3, 1.0)) if rng.random() < emphysema_rate else 0.0,
            seed=int(rng.integers(0, 2**31 - 1)),
        )

    # Derived dimensions (mm) -------------------------------------------------------
    @property
    def cavity_mm(self) -> tuple[float, float]:
        """Semi-axes (left-right, anterior-posterior) of the thoracic cavity."""
        return 128.0 * self.scale * self.aspect, 84.0 * self.scale

    @property
    def body_mm(self) -> tuple[float, float]:
        """Semi-axes of the skin outline."""
        wall = 10.0 * self.scale + self.muscle_mm + self.fat_mm
        a, b = self.cavity_mm
        return a + wall, b + wall

    @property
    def apex_z_mm(self) -> float:
        """Height of the lung apices above the carina."""
        return 112.0 * self.scale

    @property
    def lowest_lung_z_mm(self) -> float:
        """Lowest lung point (posterior costophrenic recess, left)."""
        return -(self.dome_right_mm + self.dome_left_extra_mm) * self.scale - 55.0 * self.scale


@dataclass(frozen=True, eq=False)
class Phantom:
    """A rendered phantom before scanner effects.

    Attributes:
        hu: Noise-free HU volume.
        tissue: :class:`Tissue` label per voxel.
        lobe: :class:`Lobe` label per voxel.
        vessel_fraction: Partial-volume vessel fraction in the lungs (0..1).
        shape: The habitus it was built from.
        fissure_distance_mm: Signed distance to the nearest fissure (lung voxels), in mm.
        fissure_planes: Parameters of the fissure surfaces.

    Shapes:
        All arrays: ``(Z, Y, X)`` like ``hu.array``.
    """

    hu: Volume
    tissue: np.ndarray
    lobe: np.ndarray
    vessel_fraction: np.ndarray
    shape: PatientShape
    fissure_distance_mm: np.ndarray
    fissure_planes: dict[str, float]

    @property
    def lung_mask(self) -> np.ndarray:
        """Voxels labelled lung (parenchyma, including vessels and airways inside it)."""
        return self.lobe > 0


def phantom_geometry(
    shape: PatientShape,
    *,
    matrix: int = 512,
    slice_thickness_mm: float = 1.25,
    slice_spacing_mm: float | None = None,
    fov_margin_mm: float = 25.0,
    tilt_deg: float = 0.0,
) -> VolumeGeometry:
    """The scan grid a technologist would choose for this patient.

    The field of view covers the body plus a margin (so pixel spacing = FOV / matrix:
    0.6-0.9 mm at 512), and the slices run from above the apices to below the lowest
    lung base.

    Args:
        shape: Patient habitus.
        matrix: Rows = columns.
        slice_thickness_mm: Nominal thickness (also the spacing unless given).
        slice_spacing_mm: Distance between slice centres.
        fov_margin_mm: Space around the body.
        tilt_deg: Rotate the grid about the left-right axis (oblique acquisition).
    """
    a_b, b_b = shape.body_mm
    fov = 2.0 * max(a_b, b_b + 15.0) + 2.0 * fov_margin_mm
    px = fov / matrix
    dz = slice_spacing_mm or slice_thickness_mm
    z_top = shape.apex_z_mm + 20.0
    z_bot = shape.lowest_lung_z_mm - 15.0
    n_slices = int(np.ceil((z_top - z_bot) / dz)) + 1
    t = np.radians(tilt_deg)
    rot = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    aff = np.eye(4)
    aff[:3, 0] = rot @ np.array([0.0, 0.0, dz])
    aff[:3, 1] = rot @ np.array([0.0, px, 0.0])
    aff[:3, 2] = rot @ np.array([px, 0.0, 0.0])
    centre = np.array([0.0, 12.0, 0.5 * (z_top + z_bot)])
    half = np.array([(matrix - 1) / 2 * px, (matrix - 1) / 2 * px, (n_slices - 1) / 2 * dz])
    aff[:3, 3] = centre - rot @ np.array([half[0], half[1], half[2]])
    return VolumeGeometry((n_slices, matrix, matrix), aff)


def _superellipse(x: np.ndarray, y: np.ndarray, a: float, b: float) -> np.ndarray:
    p = _SUPERELLIPSE_P
    return (np.abs(x / a) ** p + np.abs(y / b) ** p) ** (1.0 / p)


def _smooth_noise(shape: tuple[int, ...], rng: np.random.Generator, sigma_vox: float) -> np.ndarray:
    """Zero-mean, unit-std random field, smooth over about ``sigma_vox`` voxels."""
    coarse_factor = max(1, int(sigma_vox // 2))
    small = tuple(max(2, n // coarse_factor) for n in shape)
    field = ndimage.gaussian_filter(rng.standard_normal(small).astype(np.float32), sigma_vox / coarse_factor)
    field = ndimage.zoom(field, [n / m for n, m in zip(shape, small, strict=True)], order=1)
    field = field[tuple(slice(0, n) for n in shape)]
    field -= field.mean()
    return field / (field.std() + 1e-6)


def _tube(
    geom: VolumeGeometry,
    out: np.ndarray,
    points: list[tuple[float, float, float]],
    radius_mm: float,
    label: int,
    voxel_mm: float,
    inner_label: int | None = None,
    wall_mm: float = 0.0,
) -> None:
    """Paint a polyline tube (optionally hollow: ``inner_label`` inside a wall)."""
    for p0, p1 in itertools.pairwise(points):
        lo = np.minimum(p0, p1) - radius_mm - 1
        hi = np.maximum(p0, p1) + radius_mm + 1
        box = box_around(geom, lo, hi)
        if box is None:
            continue
        sl, (x, y, z) = box
        dist, _ = segment_distance(x, y, z, p0, p1)
        view = out[sl]
        view[dist <= radius_mm] = label
        if inner_label is not None:
            view[dist <= radius_mm - wall_mm] = inner_label


def _aorta_path(s: float, b_c: float) -> list[tuple[float, float, float]]:
    return [
        (5 * s, -22 * s, -70 * s),
        (5 * s, -28 * s, 12 * s),
        (14 * s, -5 * s, 30 * s),
        (24 * s, 30 * s, 18 * s),
        (22 * s, b_c - 32 * s, -40 * s),
        (20 * s, b_c - 32 * s, -320 * s),
    ]


def _airway_paths(s: float, z_top: float) -> list[tuple[list[tuple[float, float, float]], float]]:
    carina = (0.0, 8 * s, 0.0)
    r_main, l_main = (-38 * s, 16 * s, -20 * s), (42 * s, 22 * s, -38 * s)
    return [
        ([(0.0, -4 * s, z_top), carina], 9.0 * s),
        ([carina, r_main], 7.0 * s),
        ([carina, l_main], 6.0 * s),
        ([r_main, (-62 * s, 8 * s, -2 * s)], 4.5 * s),  # right upper lobe bronchus
        ([r_main, (-50 * s, 22 * s, -60 * s), (-58 * s, 30 * s, -95 * s)], 5.0 * s),  # intermediate/lower
        ([(-50 * s, 22 * s, -60 * s), (-62 * s, -12 * s, -70 * s)], 3.5 * s),  # middle lobe bronchus
        ([l_main, (62 * s, 8 * s, -22 * s)], 4.5 * s),  # left upper lobe bronchus
        ([l_main, (58 * s, 34 * s, -85 * s)], 5.0 * s),  # left lower lobe bronchus
    ]


def build_phantom(geometry: VolumeGeometry, shape: PatientShape, rng: np.random.Generator | None = None) -> Phantom:
    """Render the phantom on a grid.

    Args:
        geometry: Target grid (any spacing/orientation), e.g. from :func:`phantom_geometry`.
        shape: Patient habitus.
        rng: Randomness for texture and vessels (default: from ``shape.seed``).

    Returns:
        HU volume and labels.
    """
    rng = rng if rng is not None else np.random.default_rng(shape.seed)
    s = shape.scale
    voxel_mm = float(min(geometry.spacing_mm))
    x, y, z = world_grid(geometry)
    full = geometry.shape
    a_c, b_c = shape.cavity_mm
    a_b, b_b = shape.body_mm
    tissue = np.zeros(full, np.uint8)

    # Body wall: fat, muscle, rib band, cavity (mediastinal fat until carved).
    rho_body = _superellipse(x, y, a_b, b_b)
    wall = 10.0 * s
    tissue[np.broadcast_to(rho_body <= 1.0, full)] = Tissue.FAT
    rho_muscle = _superellipse(x, y, a_c + wall + shape.muscle_mm, b_c + wall + shape.muscle_mm)
    tissue[np.broadcast_to(rho_muscle <= 1.0, full)] = Tissue.MUSCLE
    rho_cav = _superellipse(x, y, a_c, b_c)
    cavity = np.broadcast_to(rho_cav <= 1.0, full)
    tissue[cavity] = Tissue.MEDIASTINAL_FAT

    # Table under the patient (posterior = +y).
    table_y0 = b_b + 12.0
    table = np.broadcast_to((y >= table_y0) & (y <= table_y0 + 9.0) & (np.abs(x) < 0.85 * a_b + 40), full)
    tissue[table] = Tissue.TABLE

    # Diaphragm domes: lungs only above them; liver under the right, soft tissue left.
    zr = -shape.dome_right_mm * s
    zl = zr - shape.dome_left_extra_mm * s
    dome_r = zr - ((x + 62 * s) ** 2) / (2 * 95 * s) - ((y + 5) ** 2) / (2 * 85 * s)
    dome_l = zl - ((x - 62 * s) ** 2) / (2 * 95 * s) - ((y + 5) ** 2) / (2 * 85 * s)
    dome = np.where(x < 0, dome_r, dome_l)
    below = cavity & (z < dome)
    tissue[below & (x < 15 * s)] = Tissue.LIVER
    tissue[below & (x >= 15 * s)] = Tissue.SOFT_TISSUE

    # Lungs: cavity, above the domes, below the apices, lateral to the mediastinum.
    apex = shape.apex_z_mm - ((np.abs(x) - 55 * s) ** 2) / (2 * 55 * s) - (y**2) / (2 * 70 * s)
    med_half = np.where(y < -15 * s, 26 * s, 18 * s) + np.where(z > -30 * s, 8 * s, 0)
    # The cavity narrows towards the apices (thoracic inlet).
    taper = np.clip(0.55 + 0.45 * (shape.apex_z_mm - z) / (75 * s), 0.55, 1.0)
    inlet = _superellipse(x / taper, y / (0.6 + 0.4 * taper), a_c, b_c) <= 1.0
    lung = cavity & inlet & (z > dome) & (z < apex) & (np.abs(x) > med_half)
    heart_c = np.array([22 * s, -30 * s, -92 * s])
    heart_r = np.array([75 * s, 58 * s, 62 * s])
    heart = ((x - heart_c[0]) / heart_r[0]) ** 2 + ((y - heart_c[1]) / heart_r[1]) ** 2 + (
        (z - heart_c[2]) / heart_r[2]
    ) ** 2 <= 1.0
    lung &= ~heart
    tissue[lung] = Tissue.LUNG
    tissue[heart & cavity & (z > dome - 10 * s)] = Tissue.HEART

    # Spine: vertebral bodies with discs, canal, spinous process; sternum in front.
    sy = b_c - 12 * s
    r_vb = 19 * s
    d_vb = np.sqrt(x**2 + (y - sy) ** 2)
    disc_phase = np.mod(z, 27 * s) < 5 * s
    vb = np.broadcast_to(d_vb <= r_vb, full)
    tissue[vb] = Tissue.MARROW
    tissue[vb & np.broadcast_to(d_vb > r_vb - 2.0, full)] = Tissue.CORTICAL_BONE
    tissue[vb & np.broadcast_to(disc_phase, full)] = Tissue.DISC
    canal = np.broadcast_to(np.sqrt(x**2 + (y - (sy + r_vb + 9 * s)) ** 2) <= 8 * s, full)
    tissue[canal] = Tissue.SOFT_TISSUE
    spinous = np.broadcast_to((np.abs(x) < 5 * s) & (y > sy + r_vb + 17 * s) & (y < sy + r_vb + 32 * s), full)
    tissue[spinous & ~np.broadcast_to(disc_phase, full)] = Tissue.CORTICAL_BONE
    sternum = np.broadcast_to(
        (np.abs(x) < 16 * s) & (y < -b_c - 2 * s) & (y > -b_c - 13 * s) & (z < 70 * s) & (z > -150 * s), full
    )
    tissue[sternum] = Tissue.MARROW
    _ribs(geometry, tissue, x, y, z, shape)

    # Great vessels and airways.
    _tube(geometry, tissue, _aorta_path(s, b_c), 13.0 * s, Tissue.AORTA, voxel_mm)
    z_top = float(max(geometry.index_to_world([[n, 0, 0] for n in (0, full[0] - 1)])[:, 2]))
    for path, radius in _airway_paths(s, z_top + 5):
        _tube(geometry, tissue, path, radius, Tissue.SOFT_TISSUE, voxel_mm, inner_label=Tissue.AIRWAY, wall_mm=1.5)

    lung_now = tissue == Tissue.LUNG
    lobe, fissure_mm, planes = _lobes(x, y, z, lung_now, shape, rng)

    # Vessels: trees grown inside the lungs, painted as partial-volume fractions.
    segments = grow_vessel_trees(geometry, lung_now, shape.scale, rng)
    vessel_fraction = paint_segments(geometry, segments, voxel_mm) * lung_now
    tissue[lung_now & (vessel_fraction >= 0.5)] = Tissue.VESSEL

    hu = np.empty(full, np.float32)
    lut = np.array([TISSUE_HU.get(Tissue(t), 0.0) if t in Tissue._value2member_map_ else 0.0 for t in range(256)])
    hu[...] = lut[tissue]
    # Lung parenchyma: dependent (posterior) gradient, texture, fissure lines, emphysema.
    grad = np.broadcast_to(-875.0 + 50.0 * np.clip((y + b_c) / (2 * b_c), 0, 1), full)
    texture = 12.0 * _smooth_noise(full, rng, sigma_vox=max(1.0, 3.0 / voxel_mm))
    parenchyma = grad + texture
    # Visceral pleura of the fissure: thin, but about +250 HU above parenchyma on thin-section CT.
    parenchyma += 300.0 * edge_fraction(np.abs(fissure_mm) - 0.5, voxel_mm)
    if shape.emphysema > 0:
        parenchyma = np.minimum(parenchyma, _emphysema(geometry, lung_now, z, shape, rng, voxel_mm))
    in_lung = lung_now
    hu[in_lung] = (parenchyma * (1 - vessel_fraction) + TISSUE_HU[Tissue.VESSEL] * vessel_fraction)[in_lung]
    return Phantom(Volume(hu, geometry.affine), tissue, lobe, vessel_fraction, shape, fissure_mm, planes)


def _ribs(
    geometry: VolumeGeometry, tissue: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray, shape: PatientShape
) -> None:
    """Paired ribs: tubes along the chest wall, descending towards the front."""
    s = shape.scale
    a_c, b_c = shape.cavity_mm
    a_r, b_r = a_c + 7.0 * s, b_c + 7.0 * s
    rho = _superellipse(x, y, a_r, b_r)
    band = np.abs(rho - 1.0) * min(a_r, b_r) < 6.0 * s
    theta = np.arctan2(np.abs(x), y)  # 0 at the back, pi at the front
    bands = np.broadcast_to(band, tissue.shape)
    kk, jj, ii = np.nonzero(bands)
    if kk.size == 0:
        return
    th = np.broadcast_to(theta, tissue.shape)[kk, jj, ii]
    zz = np.broadcast_to(z, tissue.shape)[kk, jj, ii]
    radial = (np.broadcast_to(rho, tissue.shape)[kk, jj, ii] - 1.0) * min(a_r, b_r)
    z_first = shape.apex_z_mm + 5 * s
    for n in range(12):
        z_rib = z_first - n * 23.0 * s - 45.0 * s * (1 - np.cos(th)) / 2
        d = np.sqrt(radial**2 + ((zz - z_rib) / 1.4) ** 2)
        inside = (d <= 5.5 * s) & (th < 0.8 * np.pi)
        label = np.where(d > 5.5 * s - 1.6, Tissue.CORTICAL_BONE, Tissue.MARROW)
        tissue[kk[inside], jj[inside], ii[inside]] = label[inside]


def _lobes(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    lung: np.ndarray,
    shape: PatientShape,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Assign lobes with oblique fissures (both lungs) and the horizontal fissure (right).

    The oblique fissure runs from high posteriorly (about T4-T5) to the anterior
    diaphragm; the horizontal fissure runs roughly level at the fourth costal cartilage.

    Returns:
        ``(lobe labels, signed distance to the nearest fissure in mm, plane parameters)``.
    """
    s = shape.scale
    b_c = shape.cavity_mm[1]
    slope_r, slope_l = rng.uniform(0.95, 1.25), rng.uniform(0.95, 1.25)
    off_r, off_l = rng.uniform(-60, -40) * s, rng.uniform(-65, -45) * s
    z_h = rng.uniform(-40, -20) * s
    wob = 4.0 * s * np.sin(x / (23 * s) + rng.uniform(0, 6.3)) * np.cos(y / (31 * s))
    z_ob = np.where(x < 0, off_r + slope_r * y, off_l + slope_l * y) + wob
    lower = z < z_ob
    right = np.broadcast_to(x < 0, lung.shape)
    lobe = np.zeros(lung.shape, np.uint8)
    lobe[lung & right & lower] = Lobe.RLL
    middle = lung & right & ~lower & np.broadcast_to(z < z_h, lung.shape)
    lobe[middle] = Lobe.RML
    lobe[lung & right & ~lower & ~middle] = Lobe.RUL
    lobe[lung & ~right & lower] = Lobe.LLL
    lobe[lung & ~right & ~lower] = Lobe.LUL
    # Distance to the oblique fissure measured along its normal; horizontal: vertical distance.
    d_ob = (z - z_ob) / np.sqrt(1 + np.where(x < 0, slope_r, slope_l) ** 2)
    d_h = np.where((x < 0) & (z >= z_ob), z - z_h, np.inf)
    fissure = np.where(np.abs(d_ob) < np.abs(d_h), d_ob, d_h)
    fissure = np.broadcast_to(fissure, lung.shape).astype(np.float32)
    planes = {
        "oblique_right_offset_mm": off_r,
        "oblique_right_slope": slope_r,
        "oblique_left_offset_mm": off_l,
        "oblique_left_slope": slope_l,
        "horizontal_z_mm": z_h,
        "cavity_ap_mm": b_c,
    }
    return lobe, fissure, planes


def _emphysema(
    geometry: VolumeGeometry,
    lung: np.ndarray,
    z: np.ndarray,
    shape: PatientShape,
    rng: np.random.Generator,
    voxel_mm: float,
) -> np.ndarray:
    """Low-attenuation holes (-980 HU), more of them towards the apices (centrilobular pattern)."""
    out = np.full(lung.shape, np.inf, np.float32)
    idx = np.argwhere(lung)
    if idx.size == 0:
        return out
    zz = np.broadcast_to(z, lung.shape)[lung]
    weight = np.exp((zz - zz.max()) / 60.0)
    weight /= weight.sum()
    n_holes = int(shape.emphysema * 600 * shape.scale**3)
    picks = idx[rng.choice(len(idx), size=n_holes, p=weight)]
    centres = geometry.index_to_world(picks)
    radii = rng.uniform(1.5, 6.0, size=n_holes)
    for c, r in zip(centres, radii, strict=True):
        box = box_around(geometry, c - r - 1, c + r + 1)
        if box is None:
            continue
        sl, (bx, by, bz) = box
        frac = edge_fraction(np.sqrt((bx - c[0]) ** 2 + (by - c[1]) ** 2 + (bz - c[2]) ** 2) - r, voxel_mm)
        out[sl] = np.minimum(out[sl], np.where(frac > 0, -980.0 * frac + (1 - frac) * -870.0, np.inf))
    return out
