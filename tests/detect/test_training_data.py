"""Training-data sources (synthetic, LUNA16 MetaImage, LIDC XML) and candidate labelling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medmm.detect.training_data import (
    KIND_CENTRED_POSITIVE,
    KIND_NEGATIVE,
    STORED_PATCH,
    PatchSet,
    TrainingNodule,
    case_patches,
    discover_cases,
    load_patch_cache,
    prepare_patch_cache,
)
from medmm.errors import InputError
from medmm.synth.cases import Pattern, generate_case
from medmm.synth.scanner import Kernel, ScannerSettings
from tests.conftest import LIDC_DIR, require_shared


@pytest.fixture(scope="module")
def metastases_case():
    return generate_case(107, pattern=Pattern.MULTIPLE_METASTASES, scanner=ScannerSettings(Kernel.STANDARD, 2.0, 256))


def test_case_patches_label_candidates_against_the_reference(metastases_case) -> None:
    case = metastases_case
    nodules = [TrainingNodule(n.center_lps_mm, n.diameter_mm, n.spec.texture, False) for n in case.nodules]
    ps = case_patches(case.volume, nodules, rng=np.random.default_rng(0), hard_negatives=20, random_negatives=10)
    assert ps.patches.shape[1:] == (STORED_PATCH,) * 3
    assert ps.stats["nodules"] == len(nodules)
    assert ps.stats["nodules_hit"] >= len(nodules) - 1
    assert (ps.kind == KIND_NEGATIVE).sum() == 30
    assert (ps.kind == KIND_CENTRED_POSITIVE).sum() == 3 * len(nodules)
    pos = ps.label > 0
    assert np.all(ps.kind[pos] != KIND_NEGATIVE)
    # A positive's offset points at its nodule: within the stored patch and within the radius + jitter.
    assert np.all(np.linalg.norm(ps.offset_mm[pos], axis=1) <= ps.diameter_mm[pos] / 2 + 1.8)
    # The centre voxel of a nodule-centred patch is dense (solid nodule), of most negatives not.
    c = STORED_PATCH // 2
    centred = ps.kind == KIND_CENTRED_POSITIVE
    assert np.median(ps.patches[centred, c, c, c]) > -300
    assert np.all(ps.texture[pos] == 0)  # solid


def test_patch_cache_round_trip(tmp_path: Path) -> None:
    n = 5
    ps = PatchSet(
        np.zeros((n, 4, 4, 4), np.int16),
        np.array([1, 0, 0, 1, 0], np.float32),
        np.zeros((n, 3), np.float32),
        np.array([5, 0, 0, 7, 0], np.float32),
        np.array([0, -1, -1, 2, -1], np.int8),
        np.full(n, -1, np.int8),
        np.array([1, 0, 0, 2, 0], np.int8),
        np.zeros(n, np.int32),
        ["a"],
        {"nodules": 2.0},
    )
    ps.save(tmp_path / "a.npz")
    assert PatchSet.read_stats(tmp_path / "a.npz") == {"nodules": 2.0}
    back = load_patch_cache(tmp_path, ["a", "a"])
    assert len(back) == 10 and back.case_ids == ["a", "a"]
    assert back.case.tolist() == [0] * 5 + [1] * 5
    assert np.array_equal(back.texture[:5], ps.texture)


def test_luna16_layout_is_read_in_world_coordinates(tmp_path: Path, metastases_case) -> None:
    sitk = pytest.importorskip("SimpleITK")
    vol = metastases_case.volume
    img = sitk.GetImageFromArray(vol.array)
    img.SetSpacing(tuple(float(s) for s in vol.spacing_mm[::-1]))
    img.SetOrigin(tuple(float(o) for o in vol.origin_lps_mm))
    d = vol.direction  # columns: world directions of axes k, j, i
    img.SetDirection(tuple(float(v) for v in np.column_stack([d[:, 2], d[:, 1], d[:, 0]]).ravel()))
    (tmp_path / "subset0").mkdir()
    sitk.WriteImage(img, str(tmp_path / "subset0" / "1.2.3.mhd"))
    n = metastases_case.nodules[0]
    (tmp_path / "annotations.csv").write_text(
        "seriesuid,coordX,coordY,coordZ,diameter_mm\n"
        f"1.2.3,{n.center_lps_mm[0]},{n.center_lps_mm[1]},{n.center_lps_mm[2]},{n.diameter_mm}\n"
    )
    (tmp_path / "annotations_excluded.csv").write_text("seriesuid,coordX,coordY,coordZ,diameter_mm\n1.2.3,0,0,0,-1\n")
    cases = discover_cases(tmp_path)
    assert [c.case_id for c in cases] == ["1.2.3"]
    assert cases[0].source == "luna16" and len(cases[0].excluded) == 1
    loaded = cases[0].load()
    assert np.allclose(loaded.affine, vol.affine, atol=1e-4)
    k, j, i = np.rint(loaded.world_to_index(cases[0].nodules[0].center_lps_mm)).astype(int)
    assert loaded.array[k, j, i] > -300


def test_synthetic_discovery_and_prepare_cache_resume(tmp_path: Path) -> None:
    from medmm.synth.dataset import generate_dataset

    generate_dataset(tmp_path / "syn", n_cases=2, seed=5, matrix=128, split_fractions=(1, 1, 0), slice_thickness_mm=3.0)
    cases = discover_cases(tmp_path / "syn")
    assert {c.split for c in cases} == {"train", "val"}
    stats = prepare_patch_cache(cases[:1], tmp_path / "cache")
    assert stats["cases"] == 1
    first = (tmp_path / "cache" / f"{cases[0].case_id}.npz").stat().st_mtime_ns
    prepare_patch_cache(cases[:1], tmp_path / "cache")  # cached: not recomputed
    assert (tmp_path / "cache" / f"{cases[0].case_id}.npz").stat().st_mtime_ns == first


def test_discover_cases_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        discover_cases(tmp_path / "nope")
    with pytest.raises(InputError, match="no training cases"):
        discover_cases(tmp_path)


@pytest.mark.realdata
def test_lidc_series_with_xml_is_a_training_case() -> None:
    root = require_shared(LIDC_DIR)
    cases = discover_cases(root)
    assert len(cases) == 1 and cases[0].source == "lidc"
    diameters = sorted(n.diameter_mm for n in cases[0].nodules)
    assert diameters and diameters[-1] == pytest.approx(23.1, abs=1.5)
    assert json.dumps([n.center_lps_mm for n in cases[0].nodules])
