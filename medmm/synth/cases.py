"""Synthetic cases: phantom + nodules + other findings + a diagnosis label.

Each :class:`Pattern` is a radiological picture that a differential diagnosis has to tell
apart, with the textbook or guideline statement it encodes:

* ``solitary_spiculated_upper_lobe`` -> primary lung cancer: a single solid or part-solid
  nodule of 8-30 mm with spiculated margin, upper-lobe predominant. Spiculation and
  upper-lobe location raise malignancy probability in the Brock model (McWilliams et al.,
  N. Engl. J. Med. 369:910, 2013).
* ``subsolid_adenocarcinoma_spectrum`` -> adenocarcinoma spectrum: one pure ground-glass or
  part-solid nodule (Fleischner 2017 subsolid guidance, MacMahon et al., Radiology 284:
  228; IASLC/ATS/ERS classification, Travis et al., J. Thorac. Oncol. 6:244, 2011).
* ``multiple_metastases`` -> metastatic disease: several round, smooth, solid nodules of
  varied size in both lungs, lower-zone and peripheral predominant (haematogenous spread
  follows blood flow; Seo et al., RadioGraphics 21:403, 2001).
* ``calcified_granulomas`` -> healed granulomatous infection (benign): a few small nodules
  with diffuse or central calcification, patterns the Fleischner glossary calls benign
  (Hansell et al., Radiology 246:697, 2008).
* ``hamartoma`` -> pulmonary hamartoma (benign): one smooth or lobulated nodule with
  popcorn calcification (Siegelman et al., Radiology 160:313, 1986).
* ``perifissural_lymph_node`` -> intrapulmonary lymph node (benign): one or two small
  lentiform nodules on a fissure, lower lobes (Ahn et al., Radiology 254:949, 2010;
  de Hoop et al., Radiology 263:561, 2012).
* ``small_indeterminate`` -> indeterminate small nodule: one solid 4-8 mm nodule.
* ``normal`` -> no nodule.

Rates are configurable (:data:`DEFAULT_PATTERN_RATES`). Other findings (emphysema, a
layering pleural effusion) are drawn independently of the pattern.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from medmm.synth.lidc_stats import LidcNoduleStats, load_lidc_stats
from medmm.synth.nodules import (
    Calcification,
    NodulePosition,
    NoduleSpec,
    NoduleTexture,
    RenderedNodule,
    find_nodule_centre,
    render_nodule,
)
from medmm.synth.phantom import Lobe, PatientShape, Phantom, Tissue, build_phantom, phantom_geometry
from medmm.synth.scanner import ScannerSettings, apply_scanner
from medmm.types import Volume

__all__ = [
    "DEFAULT_PATTERN_RATES",
    "SUBSOLID_SIZE_MM",
    "Pattern",
    "SyntheticCase",
    "check_subsolid_size",
    "generate_case",
    "parse_pattern_rates",
]


class Pattern(StrEnum):
    """Case patterns; the value is the pattern name, :data:`DIAGNOSIS` gives the label."""

    NORMAL = "normal"
    SOLITARY_SPICULATED_UPPER_LOBE = "solitary_spiculated_upper_lobe"
    SUBSOLID_ADENOCARCINOMA_SPECTRUM = "subsolid_adenocarcinoma_spectrum"
    MULTIPLE_METASTASES = "multiple_metastases"
    CALCIFIED_GRANULOMAS = "calcified_granulomas"
    HAMARTOMA = "hamartoma"
    PERIFISSURAL_LYMPH_NODE = "perifissural_lymph_node"
    SMALL_INDETERMINATE = "small_indeterminate"


DIAGNOSIS: dict[Pattern, str] = {
    Pattern.NORMAL: "normal",
    Pattern.SOLITARY_SPICULATED_UPPER_LOBE: "primary lung cancer",
    Pattern.SUBSOLID_ADENOCARCINOMA_SPECTRUM: "adenocarcinoma spectrum (subsolid)",
    Pattern.MULTIPLE_METASTASES: "pulmonary metastases",
    Pattern.CALCIFIED_GRANULOMAS: "calcified granulomas (healed infection)",
    Pattern.HAMARTOMA: "pulmonary hamartoma",
    Pattern.PERIFISSURAL_LYMPH_NODE: "intrapulmonary lymph node",
    Pattern.SMALL_INDETERMINATE: "indeterminate small nodule",
}

DEFAULT_PATTERN_RATES: dict[Pattern, float] = {
    Pattern.NORMAL: 0.15,
    Pattern.SOLITARY_SPICULATED_UPPER_LOBE: 0.15,
    Pattern.SUBSOLID_ADENOCARCINOMA_SPECTRUM: 0.12,
    Pattern.MULTIPLE_METASTASES: 0.12,
    Pattern.CALCIFIED_GRANULOMAS: 0.12,
    Pattern.HAMARTOMA: 0.08,
    Pattern.PERIFISSURAL_LYMPH_NODE: 0.1,
    Pattern.SMALL_INDETERMINATE: 0.16,
}

_UPPER = (Lobe.RUL, Lobe.LUL)
_LOWER = (Lobe.RLL, Lobe.LLL)


@dataclass(frozen=True)
class OtherFindings:
    """Findings besides nodules.

    Attributes:
        emphysema: Severity 0..1 (0 = none).
        effusion_side: ``"right"``, ``"left"`` or ``""`` (none).
        effusion_depth_mm: Depth of the layering fluid, posteriorly.
    """

    emphysema: float = 0.0
    effusion_side: str = ""
    effusion_depth_mm: float = 0.0


@dataclass(frozen=True, eq=False)
class SyntheticCase:
    """One generated case with its ground truth.

    Attributes:
        case_id: Stable identifier, e.g. ``"case0007"``.
        seed: Reproduces the case.
        pattern: The pattern drawn.
        diagnosis: Diagnosis label.
        volume: Scanned HU volume (what the DICOM files hold).
        tissue: Tissue labels (:class:`~medmm.synth.phantom.Tissue`).
        lobe: Lobe labels (:class:`~medmm.synth.phantom.Lobe`).
        nodule_map: Nodule label map (0 background, n = ``nodules[n-1]``).
        nodules: Ground truth per nodule.
        other: Other findings.
        shape: Patient habitus.
        scanner: Acquisition settings.
    """

    case_id: str
    seed: int
    pattern: Pattern
    diagnosis: str
    volume: Volume
    tissue: np.ndarray
    lobe: np.ndarray
    nodule_map: np.ndarray
    nodules: tuple[RenderedNodule, ...]
    other: OtherFindings
    shape: PatientShape
    scanner: ScannerSettings
    notes: tuple[str, ...] = field(default=())


#: Diameter range (mm) of the subsolid pattern's nodule, drawn uniformly.
SUBSOLID_SIZE_MM: tuple[float, float] = (6.0, 25.0)


def _pattern_specs(
    pattern: Pattern,
    rng: np.random.Generator,
    stats: LidcNoduleStats,
    subsolid_size_mm: tuple[float, float] = SUBSOLID_SIZE_MM,
) -> list[NoduleSpec]:
    """Nodules for a pattern; sizes and margins from LIDC where the pattern leaves them open."""
    if pattern == Pattern.NORMAL:
        return []
    if pattern == Pattern.SOLITARY_SPICULATED_UPPER_LOBE:
        d = float(np.clip(stats.sample_diameter_mm(rng, min_mm=8.0, max_mm=30.0), 8.0, 30.0))
        tex = NoduleTexture.PART_SOLID if rng.random() < 0.2 else NoduleTexture.SOLID
        lobe = _UPPER[rng.integers(2)] if rng.random() < 0.75 else None
        pos = NodulePosition.JUXTAPLEURAL if rng.random() < 0.2 else NodulePosition.ISOLATED
        return [
            NoduleSpec(
                d,
                tex,
                spiculation=float(rng.uniform(0.5, 1.0)),
                lobulation=float(rng.uniform(0.2, 0.7)),
                position=pos,
                solid_fraction=float(rng.uniform(0.5, 0.8)),
                lobe=lobe,
            )
        ]
    if pattern == Pattern.SUBSOLID_ADENOCARCINOMA_SPECTRUM:
        tex = NoduleTexture.GROUND_GLASS if rng.random() < 0.5 else NoduleTexture.PART_SOLID
        lobe = _UPPER[rng.integers(2)] if rng.random() < 0.7 else None
        return [
            NoduleSpec(
                float(rng.uniform(*subsolid_size_mm)),
                tex,
                lobe=lobe,
                solid_fraction=float(rng.uniform(0.25, 0.6)),
                lobulation=float(rng.uniform(0, 0.4)),
            )
        ]
    if pattern == Pattern.MULTIPLE_METASTASES:
        n = int(rng.integers(3, 9))
        specs = []
        for k in range(n):
            lobe = _LOWER[k % 2] if rng.random() < 0.65 else (Lobe.RUL, Lobe.RML, Lobe.LUL)[rng.integers(3)]
            pos = NodulePosition.JUXTAPLEURAL if rng.random() < 0.3 else NodulePosition.ISOLATED
            specs.append(NoduleSpec(float(rng.uniform(4, 18)), NoduleTexture.SOLID, position=pos, lobe=lobe))
        return specs
    if pattern == Pattern.CALCIFIED_GRANULOMAS:
        n = int(rng.integers(1, 5))
        return [
            NoduleSpec(
                float(rng.uniform(3, 8)),
                calcification=(Calcification.DIFFUSE if rng.random() < 0.7 else Calcification.CENTRAL),
            )
            for _ in range(n)
        ]
    if pattern == Pattern.HAMARTOMA:
        return [
            NoduleSpec(
                float(rng.uniform(10, 25)), calcification=Calcification.POPCORN, lobulation=float(rng.uniform(0.0, 0.6))
            )
        ]
    if pattern == Pattern.PERIFISSURAL_LYMPH_NODE:
        return [
            NoduleSpec(float(rng.uniform(3.5, 8)), position=NodulePosition.PERIFISSURAL, lobe=_LOWER[rng.integers(2)])
            for _ in range(int(rng.integers(1, 3)))
        ]
    if pattern == Pattern.SMALL_INDETERMINATE:
        d = float(np.clip(stats.sample_diameter_mm(rng, min_mm=4.0, max_mm=8.0), 4.0, 8.0))
        return [NoduleSpec(d, lobulation=float(stats.sample_rating("lobulation", rng, d) - 1) / 8)]
    raise ValueError(f"unknown pattern {pattern!r}")


def check_subsolid_size(size_mm: Sequence[float]) -> tuple[float, float]:
    """A subsolid diameter range as ``(lo, hi)`` in mm, checked.

    Raises:
        InputError: Not two numbers with ``3 <= lo < hi <= 30``.

    Example:
        >>> check_subsolid_size([6, 10])
        (6.0, 10.0)
    """
    from medmm.errors import InputError

    values = tuple(float(v) for v in size_mm)
    if len(values) != 2 or not 3.0 <= values[0] < values[1] <= 30.0:
        raise InputError(
            f"subsolid size range {size_mm!r} is not LO < HI within 3-30 mm",
            hint="Give two diameters in millimetres, e.g. 6 10.",
        )
    return values[0], values[1]


def parse_pattern_rates(text: str) -> dict[Pattern, float]:
    """Read a pattern mix written as ``"name=rate,name=rate"``.

    Names are :class:`Pattern` values (``perifissural_lymph_node``, ...); rates are
    relative (they are normalized when a case is drawn) and patterns not named get 0.

    Raises:
        InputError: An unknown name, a rate that is not a non-negative number, or all zero.

    Example:
        >>> parse_pattern_rates("perifissural_lymph_node=3,normal=1")[Pattern.NORMAL]
        1.0
    """
    from medmm.errors import InputError

    known = ", ".join(p.value for p in Pattern)
    rates: dict[Pattern, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            pattern = Pattern(name.strip())
            if not sep:
                raise ValueError
            rate = float(value)
        except ValueError:
            raise InputError(f"bad pattern rate {item!r}", hint=f"Write NAME=RATE with NAME one of: {known}.") from None
        if not rate >= 0:
            raise InputError(f"bad pattern rate {item!r}", hint="Rates are non-negative numbers.")
        rates[pattern] = rate
    if not any(rates.values()):
        raise InputError(f"no pattern with a positive rate in {text!r}", hint=f"Name at least one of: {known}.")
    return rates


def _add_effusion(phantom: Phantom, side: str, depth_mm: float) -> None:
    """Layering pleural fluid: supine, it fills the most posterior part of one pleural space."""
    b_c = phantom.shape.cavity_mm[1]
    geom = phantom.hu.geometry
    from medmm.grid import world_grid

    x, y, _ = world_grid(geom)
    side_mask = (x < 0) if side == "right" else (x >= 0)
    fluid = phantom.lung_mask & np.broadcast_to(side_mask & (y > b_c - depth_mm), geom.shape)
    phantom.hu.array[fluid] = 12.0
    phantom.tissue[fluid] = Tissue.SOFT_TISSUE
    phantom.lobe[fluid] = Lobe.NONE


def generate_case(
    seed: int,
    *,
    case_id: str | None = None,
    matrix: int = 512,
    pattern: Pattern | str | None = None,
    rates: dict[Pattern, float] | None = None,
    scanner: ScannerSettings | None = None,
    effusion_rate: float = 0.1,
    emphysema_rate: float = 0.15,
    slice_thickness_mm: float | None = None,
    tilt_deg: float = 0.0,
    juxtavascular_rate: float = 0.0,
    subsolid_size_mm: tuple[float, float] = SUBSOLID_SIZE_MM,
) -> SyntheticCase:
    """Generate one case reproducibly from its seed.

    Args:
        seed: Everything random derives from it.
        case_id: Identifier (default ``f"case{seed}"``).
        matrix: Image matrix (512 realistic; 256 for quick training sets).
        pattern: Force a pattern (default: drawn with ``rates``).
        rates: Pattern probabilities (normalized).
        scanner: Force acquisition settings (default: drawn).
        effusion_rate: Probability of a pleural effusion.
        emphysema_rate: Probability of emphysema.
        slice_thickness_mm: Fix the slice thickness of drawn scanner settings.
        tilt_deg: Acquire on an oblique grid rotated about the left-right axis.
        juxtavascular_rate: Probability that a nodule its pattern places in the open
            parenchyma is moved against a vessel instead (juxtavascular). Drawn from a
            stream of its own, so the default 0 leaves every existing seed's case unchanged.
        subsolid_size_mm: Diameter range of the subsolid pattern's nodule (default
            :data:`SUBSOLID_SIZE_MM`, 6-25 mm; Fleischner 2017 starts subsolid follow-up at
            6 mm). A narrower range such as ``(6, 10)`` makes training sets rich in the small
            ground-glass nodules a detector finds hardest; the draw is the same one, so the
            default leaves every existing seed's case unchanged.

    Raises:
        InputError: ``subsolid_size_mm`` is not ``lo < hi`` within 3-30 mm.
    """
    lo, hi = check_subsolid_size(subsolid_size_mm)
    rng = np.random.default_rng(seed)
    stats = load_lidc_stats()
    table = rates or DEFAULT_PATTERN_RATES
    names = list(table)
    probs = np.asarray([table[p] for p in names], float)
    chosen = Pattern(pattern) if pattern is not None else names[rng.choice(len(names), p=probs / probs.sum())]
    shape = PatientShape.sample(rng, emphysema_rate=emphysema_rate)
    settings = scanner or ScannerSettings.sample(rng, matrix=matrix)
    if scanner is None and slice_thickness_mm is not None:
        settings = dataclasses.replace(settings, slice_thickness_mm=float(slice_thickness_mm))
    geometry = phantom_geometry(
        shape, matrix=settings.matrix, slice_thickness_mm=settings.slice_thickness_mm, tilt_deg=tilt_deg
    )
    phantom = build_phantom(geometry, shape, rng)
    other = OtherFindings(emphysema=shape.emphysema)
    if rng.random() < effusion_rate:
        other = OtherFindings(shape.emphysema, str(rng.choice(["right", "left"])), float(rng.uniform(10, 35)))
        _add_effusion(phantom, other.effusion_side, other.effusion_depth_mm)
    nodule_map = np.zeros(geometry.shape, np.uint8)
    rendered: list[RenderedNodule] = []
    notes: list[str] = []
    specs = _pattern_specs(chosen, rng, stats, (lo, hi))
    if juxtavascular_rate > 0:
        move = np.random.default_rng([seed, 7]).random(len(specs)) < juxtavascular_rate
        specs = [
            dataclasses.replace(s, position=NodulePosition.JUXTAVASCULAR)
            if m and s.position == NodulePosition.ISOLATED
            else s
            for s, m in zip(specs, move, strict=True)
        ]
    for spec in specs:
        centre = find_nodule_centre(phantom, spec, rng, nodule_map)
        if centre is None and spec.lobe is not None:
            spec = NoduleSpec(**{**spec.__dict__, "lobe": None})
            centre = find_nodule_centre(phantom, spec, rng, nodule_map)
        if centre is None:
            notes.append(f"no room for a {spec.diameter_mm:.1f} mm {spec.position} nodule; skipped")
            continue
        rendered.append(render_nodule(phantom, spec, centre, len(rendered) + 1, nodule_map, rng))
    scanned = apply_scanner(phantom.hu, settings, rng, body_width_mm=2 * shape.body_mm[0])
    return SyntheticCase(
        case_id or f"case{seed}",
        seed,
        chosen,
        DIAGNOSIS[chosen],
        scanned,
        phantom.tissue,
        phantom.lobe,
        nodule_map,
        tuple(rendered),
        other,
        shape,
        settings,
        tuple(notes),
    )
