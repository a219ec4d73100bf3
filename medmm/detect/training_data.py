"""Training patches for the nodule CNN, from synthetic sets, LUNA16 or LIDC-IDRI.

Each training case goes through exactly the inference path -- lung mask, 1 mm region,
blob candidates -- and every candidate is labelled against the reference:

* **positive** when its distance to a nodule centre is at most the nodule's radius (the
  LUNA16 hit rule), with the nodule's centre offset, diameter, texture and calcification
  as regression/classification targets;
* **ignored** when it is near a nodule but not within its radius (up to 1.5 radii + 2 mm),
  or near a LUNA16 ``annotations_excluded.csv`` finding;
* **negative** otherwise. Negatives are *mined on the candidates*: the strongest blob
  responses (the vessel crossings and fissure knots the filter likes most) are all
  kept, plus a random sample of the rest; the trainer then re-weights them by the
  network's own loss (online hard-negative mining, :mod:`medmm.detect.train`).

Patches centred on each reference nodule (jittered) are added as extra positives, so a
nodule the candidate generator missed still teaches the classifier.

Sources (:func:`discover_cases`):

* a ``medmm synth`` folder (``*/ground_truth.json`` + ``dicom/``);
* a LUNA16 layout: ``*.mhd``/``.raw`` anywhere below, ``annotations.csv`` and optionally
  ``annotations_excluded.csv`` at the top;
* DICOM series with LIDC-IDRI XML files beside them (consensus of the readers' outlines,
  :func:`medmm.io.lidc_consensus`, nodules >= 3 mm outlined by at least one reader).

Patches are cached per case as ``.npz`` files (written atomically), so preparation
resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from medmm.anatomy import segment_lungs
from medmm.detect.candidates import find_candidates, lung_region_isotropic
from medmm.detect.model import TEXTURES
from medmm.detect.patches import PaddedRegion
from medmm.detect.ranker import CandidateRanker, Ranker
from medmm.errors import InputError, MedmmError
from medmm.io.atomic import atomic_path
from medmm.parallel import process_map
from medmm.types import NoduleTexture, Volume

__all__ = [
    "STORED_PATCH",
    "PatchSet",
    "TrainingCase",
    "TrainingNodule",
    "case_patches",
    "discover_cases",
    "load_cached",
    "load_patch_cache",
    "prepare_patch_cache",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

STORED_PATCH = 40
"""Stored patch edge (voxels at ~1 mm): room for shifts and rotations before the 32^3 crop."""

KIND_NEGATIVE, KIND_CANDIDATE_POSITIVE, KIND_CENTRED_POSITIVE = 0, 1, 2


@dataclass(frozen=True)
class TrainingNodule:
    """A reference nodule for training.

    Attributes:
        center_lps_mm: Centre.
        diameter_mm: Diameter.
        texture: Attenuation class, None when the source does not say.
        calcified: Calcified or not, None when unknown.
    """

    center_lps_mm: tuple[float, float, float]
    diameter_mm: float
    texture: NoduleTexture | None = None
    calcified: bool | None = None


@dataclass(frozen=True)
class TrainingCase:
    """One scan to learn from.

    Attributes:
        case_id: Unique within a data set (used as the cache file name).
        load: Returns the CT volume (HU).
        nodules: Reference nodules.
        excluded: ``(centre, diameter)`` of findings to neither reward nor punish.
        source: ``"synthetic"``, ``"luna16"`` or ``"lidc"``.
        split: ``"train"``, ``"val"``, ``"test"`` where the source says, else ``""``.
    """

    case_id: str
    load: Callable[[], Volume]
    nodules: tuple[TrainingNodule, ...]
    excluded: tuple[tuple[tuple[float, float, float], float], ...] = ()
    source: str = ""
    split: str = ""


@dataclass
class PatchSet:
    """Labelled patches of one or more cases.

    Shapes:
        - patches: ``(N, S, S, S)`` int16 HU, candidate at index ``S // 2``
        - label: ``(N,)`` 1 nodule, 0 not
        - offset_mm: ``(N, 3)`` nodule centre minus patch centre, patch axes (k, j, i)
        - diameter_mm: ``(N,)`` (0 for negatives)
        - texture: ``(N,)`` index into :data:`~medmm.detect.model.TEXTURES`, -1 unknown
        - calcified: ``(N,)`` 1 / 0, -1 unknown
        - kind: ``(N,)`` 0 negative, 1 positive candidate, 2 nodule-centred positive
        - case: ``(N,)`` case number within the set
    """

    patches: np.ndarray
    label: np.ndarray
    offset_mm: np.ndarray
    diameter_mm: np.ndarray
    texture: np.ndarray
    calcified: np.ndarray
    kind: np.ndarray
    case: np.ndarray
    case_ids: list[str] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.label)

    _ARRAYS = ("patches", "label", "offset_mm", "diameter_mm", "texture", "calcified", "kind", "case")

    def save(self, path: Path) -> None:
        """Write as one compressed ``.npz`` (atomically)."""
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                **{k: getattr(self, k) for k in self._ARRAYS},
                case_ids=np.array(self.case_ids),
                stats=np.array(json.dumps(self.stats)),
            )

    @classmethod
    def load(cls, path: Path) -> PatchSet:
        """Read a set written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in cls._ARRAYS}
            return cls(**arrays, case_ids=[str(c) for c in z["case_ids"]], stats=json.loads(str(z["stats"])))

    @staticmethod
    def read_stats(path: Path) -> dict[str, float]:
        """Only the stats of a saved set (npz members load lazily; patches stay on disk)."""
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["stats"]))

    @classmethod
    def concat(cls, sets: Sequence[PatchSet]) -> PatchSet:
        """Join sets, renumbering cases."""
        out: dict[str, list[np.ndarray]] = {k: [] for k in cls._ARRAYS}
        ids: list[str] = []
        for s in sets:
            for k in cls._ARRAYS:
                out[k].append(getattr(s, k) + len(ids) if k == "case" else getattr(s, k))
            ids.extend(s.case_ids)
        return cls(**{k: np.concatenate(v) for k, v in out.items()}, case_ids=ids)


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class _DicomLoader:
    """Picklable loader of a DICOM series folder (for worker processes)."""

    folder: Path

    def __call__(self) -> Volume:
        from medmm.io import load_series

        return load_series(self.folder)


@dataclass(frozen=True)
class _MhdLoader:
    """Picklable loader of a LUNA16 MetaImage."""

    path: Path

    def __call__(self) -> Volume:
        return _read_mhd(self.path)


def _synthetic_case(gt_path: Path, root: Path) -> TrainingCase:
    doc = json.loads(gt_path.read_text(encoding="utf-8"))
    nodules = tuple(
        TrainingNodule(
            tuple(float(c) for c in n["center_lps_mm"]),  # type: ignore[arg-type]
            float(n["diameter_mm"]),
            NoduleTexture(n["texture"]),
            n["calcification"] != "none",
        )
        for n in doc["nodules"]
    )
    folder = gt_path.parent
    split = folder.parent.name if folder.parent.name in ("train", "val", "test") else ""
    # The data set's folder name keeps ids unique when several sets are used together
    # (two `medmm synth` runs both have a train/case0001).
    return TrainingCase(
        "_".join(p for p in (root.resolve().name, split, folder.name) if p),
        _DicomLoader(folder / "dicom"),
        nodules,
        source="synthetic",
        split=split,
    )


def _read_mhd(path: Path) -> Volume:
    import SimpleITK as sitk  # noqa: N813

    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(f"cannot read MetaImage ({exc})", path=path, hint="Check the .mhd/.raw pair.") from exc
    arr = sitk.GetArrayFromImage(img).astype(np.float32)  # (z, y, x)
    d = np.asarray(img.GetDirection(), float).reshape(3, 3)  # columns: x, y, z axes in LPS
    sx, sy, sz = img.GetSpacing()
    affine = np.eye(4)
    affine[:3, 0] = d[:, 2] * sz
    affine[:3, 1] = d[:, 1] * sy
    affine[:3, 2] = d[:, 0] * sx
    affine[:3, 3] = img.GetOrigin()
    from medmm.types import SeriesInfo

    return Volume(arr, affine, SeriesInfo(series_uid=path.stem, source_files=(path,)))


def _luna16_cases(root: Path) -> list[TrainingCase]:
    from medmm.io import read_luna16_csv

    ann = read_luna16_csv(root / "annotations.csv")
    excl_path = root / "annotations_excluded.csv"
    excl = read_luna16_csv(excl_path) if excl_path.exists() else []
    cases = []
    for mhd in sorted(root.rglob("*.mhd")):
        uid = mhd.stem
        rows = [a for a in ann if a.series_uid == uid]
        nodules = tuple(TrainingNodule(a.center_lps_mm, float(a.diameter_mm or 5.0)) for a in rows)
        ex = tuple((e.center_lps_mm, float(e.diameter_mm or 5.0)) for e in excl if e.series_uid == uid)
        cases.append(TrainingCase(uid, _MhdLoader(mhd), nodules, ex, source="luna16"))
    return cases


def _lidc_case(series_dir: Path, xml_files: list[Path]) -> TrainingCase:
    from medmm.io import lidc_consensus, read_lidc_xml

    loader = _DicomLoader(series_dir)
    volume = loader()
    marks = [m for x in xml_files for m in read_lidc_xml(x)]
    consensus = lidc_consensus(marks, volume, min_readers=1)
    nodules = tuple(TrainingNodule(n.center_lps_mm, float(n.diameter_mm)) for n in consensus if n.diameter_mm)
    uid = volume.info.series_uid if volume.info else series_dir.name
    return TrainingCase(uid, loader, nodules, source="lidc")


def discover_cases(root: str | os.PathLike[str]) -> list[TrainingCase]:
    """Find training cases under ``root`` (synthetic, LUNA16 or DICOM + LIDC XML).

    Raises:
        InputError: Nothing usable under ``root``.
    """
    base = Path(root)
    if not base.is_dir():
        raise InputError("training data folder does not exist", path=base, hint="Check the path.")
    gts = sorted(base.rglob("ground_truth.json"))
    if gts:
        return [_synthetic_case(p, base) for p in gts]
    if (base / "annotations.csv").exists() and any(base.rglob("*.mhd")):
        return _luna16_cases(base)
    xmls = sorted(base.rglob("*.xml"))
    if xmls:
        by_dir: dict[Path, list[Path]] = {}
        for x in xmls:
            by_dir.setdefault(x.parent, []).append(x)
        return [_lidc_case(d, xs) for d, xs in sorted(by_dir.items())]
    raise InputError(
        "no training cases found",
        path=base,
        hint="Give a `medmm synth` folder, a LUNA16 folder (annotations.csv + .mhd), or DICOM series with LIDC XML.",
    )


# --------------------------------------------------------------------------- patches


def case_patches(
    volume: Volume,
    nodules: Sequence[TrainingNodule],
    excluded: Sequence[tuple[tuple[float, float, float], float]] = (),
    *,
    rng: np.random.Generator,
    hard_negatives: int = 60,
    random_negatives: int = 40,
    centred_per_nodule: int = 3,
    lung_mask: np.ndarray | None = None,
    ranker: Ranker | None = None,
) -> PatchSet:
    """Label one case's candidates and cut its training patches.

    Args:
        volume: CT in HU.
        nodules: Reference nodules.
        excluded: Findings whose neighbourhood is ignored.
        rng: Random source (negative sampling, jitter).
        hard_negatives: Strongest-scoring negative candidates kept.
        random_negatives: Further negatives drawn at random from the rest.
        centred_per_nodule: Jittered patches centred on each reference nodule.
        lung_mask: Precomputed lung mask (default: :func:`medmm.anatomy.segment_lungs`).
        ranker: Candidate ranker (the one inference will use; None: hand-made order).

    Returns:
        The case's patches; ``stats`` holds candidate counts and recall.
    """
    mask_src = lung_mask if lung_mask is not None else segment_lungs(volume).lung_mask
    region, mask = lung_region_isotropic(volume, mask_src)
    idx, _, _ = find_candidates(region, mask, ranker=ranker)
    spacing = np.asarray(region.spacing_mm)
    cand_world = region.index_to_world(idx.astype(np.float64)) if len(idx) else np.zeros((0, 3))
    nod_world = np.array([n.center_lps_mm for n in nodules], float).reshape(-1, 3)
    radius = np.array([n.diameter_mm / 2.0 for n in nodules], float)
    state = np.zeros(len(idx), np.int8)  # 0 negative, 1 positive, 2 ignore
    match = np.full(len(idx), -1)
    if len(nodules) and len(idx):
        dist = np.linalg.norm(cand_world[:, None, :] - nod_world[None, :, :], axis=2)
        rel = dist / radius[None, :]
        nearest = np.argmin(rel, axis=1)
        d_near = dist[np.arange(len(idx)), nearest]
        r_near = radius[nearest]
        state[d_near <= 1.5 * r_near + 2.0] = 2
        pos = d_near <= r_near
        state[pos] = 1
        match[pos] = nearest[pos]
    for centre, diam in excluded:
        d = np.linalg.norm(cand_world - np.asarray(centre), axis=1)
        state[(d <= max(diam, 10.0)) & (state == 0)] = 2
    hit = {int(m) for m in match[match >= 0]}

    neg = np.flatnonzero(state == 0)  # already in score order
    keep_neg = list(neg[:hard_negatives])
    rest = neg[hard_negatives:]
    if len(rest):
        keep_neg += list(rng.choice(rest, size=min(random_negatives, len(rest)), replace=False))
    pos_idx = np.flatnonzero(state == 1)

    centres: list[np.ndarray] = []
    rows: list[tuple[int, np.ndarray, int]] = []  # (kind, true centre in region index or None, nodule)
    for n in keep_neg:
        centres.append(idx[n])
        rows.append((KIND_NEGATIVE, np.zeros(3), -1))
    for n in pos_idx:
        centres.append(idx[n])
        rows.append((KIND_CANDIDATE_POSITIVE, region.world_to_index(nod_world[match[n]]), int(match[n])))
    for m, nod in enumerate(nodules):
        true_idx = region.world_to_index(np.asarray(nod.center_lps_mm))
        if np.any(true_idx < 0) or np.any(true_idx > np.asarray(region.shape) - 1):
            continue
        jitter_vox = max(0.0, min(3.0, 0.4 * nod.diameter_mm / 2.0))
        for _ in range(centred_per_nodule):
            c = np.rint(true_idx + rng.uniform(-jitter_vox, jitter_vox, 3)).astype(np.int64)
            c = np.clip(c, 0, np.asarray(region.shape) - 1)
            centres.append(c)
            rows.append((KIND_CENTRED_POSITIVE, true_idx, m))

    n = len(centres)
    padded = PaddedRegion(region.array, STORED_PATCH)
    patches = padded.patches(np.array(centres).reshape(-1, 3), STORED_PATCH)
    label = np.zeros(n, np.float32)
    offset = np.zeros((n, 3), np.float32)
    diameter = np.zeros(n, np.float32)
    texture = np.full(n, -1, np.int8)
    calcified = np.full(n, -1, np.int8)
    kind = np.zeros(n, np.int8)
    for r, (c, (k, true_idx, m)) in enumerate(zip(centres, rows, strict=True)):
        kind[r] = k
        if k == KIND_NEGATIVE:
            continue
        nod = nodules[m]
        label[r] = 1.0
        offset[r] = (true_idx - c) * spacing
        diameter[r] = nod.diameter_mm
        if nod.texture is not None:
            texture[r] = TEXTURES.index(nod.texture)
        if nod.calcified is not None:
            calcified[r] = int(nod.calcified)
    stats = {
        "candidates": float(len(idx)),
        "nodules": float(len(nodules)),
        "nodules_hit": float(len(hit)),
        "positive_candidates": float(len(pos_idx)),
        "negatives_kept": float(len(keep_neg)),
    }
    return PatchSet(patches, label, offset, diameter, texture, calcified, kind, np.zeros(n, np.int32), [], stats)


_RANKERS: dict[str, CandidateRanker] = {}


def _prepare_one(args: tuple[TrainingCase, Path, int, str | None]) -> tuple[str, str | None, dict[str, float]]:
    case, cache, seed, ranker_path = args
    path = cache / f"{case.case_id}.npz"
    if path.exists():
        return case.case_id, None, PatchSet.read_stats(path)
    try:
        ranker = None
        if ranker_path is not None:
            if ranker_path not in _RANKERS:
                from medmm.detect.weights import load_ranker

                _RANKERS[ranker_path] = load_ranker(ranker_path)[0]
            ranker = _RANKERS[ranker_path]
        volume = case.load()
        rng = np.random.default_rng([seed, zlib.crc32(case.case_id.encode())])
        ps = case_patches(volume, case.nodules, case.excluded, rng=rng, ranker=ranker)
    except MedmmError as exc:
        return case.case_id, str(exc), {}
    ps.case_ids = [case.case_id]
    ps.save(path)
    return case.case_id, None, ps.stats


def prepare_patch_cache(
    cases: Sequence[TrainingCase],
    cache_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    ranker_path: str | os.PathLike[str] | None = None,
) -> dict[str, float]:
    """Cut and cache every case's patches (skipping cases already cached).

    ``ranker_path`` names the candidate ranker (:func:`medmm.detect.weights.load_ranker`)
    whose candidates are labelled; a cache must not mix rankers.

    Returns:
        Totals: cases, failed cases, nodules, nodules hit by a candidate, candidate recall,
        mean candidates per case.
    """
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    results = process_map(
        _prepare_one,
        [(c, cache, seed, str(ranker_path) if ranker_path else None) for c in cases],
        workers=workers,
        progress=progress,
    )
    failed = [(cid, err) for cid, err, _ in results if err]
    for cid, err in failed:
        logger.warning("case %s skipped: %s", cid, err)
    ok = [s for _, err, s in results if not err]
    nod = sum(s.get("nodules", 0.0) for s in ok)
    hit = sum(s.get("nodules_hit", 0.0) for s in ok)
    return {
        "cases": float(len(ok)),
        "failed": float(len(failed)),
        "nodules": nod,
        "nodules_hit": hit,
        "candidate_recall": hit / nod if nod else float("nan"),
        "candidates_per_case": float(np.mean([s.get("candidates", 0.0) for s in ok])) if ok else 0.0,
    }


def load_cached(
    cache_dir: str | os.PathLike[str], case_ids: Sequence[str], suffix: str, load: Callable[[Path], T], what: str
) -> list[T]:
    """Load ``<case_id><suffix>`` files of a cache (missing ones skipped with a warning).

    Raises:
        InputError: None of the cases is cached.
    """
    cache = Path(cache_dir)
    out = []
    for cid in case_ids:
        p = cache / f"{cid}{suffix}"
        if p.exists():
            out.append(load(p))
        else:
            logger.warning("no cached %s for %s", what, cid)
    if not out:
        raise InputError(f"no cached {what} for these cases", path=cache, hint="Run the preparation step first.")
    return out


def load_patch_cache(cache_dir: str | os.PathLike[str], case_ids: Sequence[str]) -> PatchSet:
    """Load the cached patches of the given cases (missing ones are skipped with a warning)."""
    return PatchSet.concat(load_cached(cache_dir, case_ids, ".npz", PatchSet.load, "patches"))
