"""Draw the figures in docs/images/.

* ``phantom_vs_lidc.png``: a synthetic case next to LIDC-IDRI-0001;
* ``lidc_lungs_lobes.png``: LIDC-IDRI-0001 with medmm's lung and lobe overlays;
* ``html_report.png``: the HTML report of sample_dicom/case_metastases as headless
  Chromium renders it (skipped when ``chromium`` is not installed);
* ``viewer.png`` and ``montage.png``: ``medmm.viz.static_figure`` and ``medmm.viz.montage``
  of the same case;
* ``froc_heldout.png``: ``medmm.viz.plot_froc`` of a held-out evaluation, drawn only when
  given ``--froc-predictions CSV --froc-reference DIR`` (the held-out set is generated with
  ``medmm synth --seed 99`` and not stored in the repository).

The first figure in detail:

Axial, coronal and sagittal slices of a full-resolution phantom (512 matrix, 1.25 mm)
beside the same views of the real LIDC-IDRI-0001 series, at one lung window
(level -600 HU, width 1500 HU). Needs matplotlib (``pip install -e .``) and
../shared/data/lidc-idri-0001 (the real panel is left out when it is absent).

Run from the repository root:
    python docs/make_figures.py [--only viz] [--froc-predictions CSV --froc-reference DIR]
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from medmm.io import load_series
from medmm.synth.cases import Pattern, generate_case
from medmm.synth.scanner import Kernel, ScannerSettings
from medmm.types import Volume

ROOT = Path(__file__).resolve().parents[1]
LIDC = ROOT.parent / "shared" / "data" / "lidc-idri-0001" / "series"
OUT = ROOT / "docs" / "images" / "phantom_vs_lidc.png"
WINDOW = (-600 - 750, -600 + 750)


def _views(vol: Volume, centre_lps: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """Axial, coronal, sagittal slices through a point, head up, with display aspect."""
    k, j, i = np.clip(np.rint(vol.world_to_index(centre_lps)).astype(int), 0, np.asarray(vol.shape) - 1)
    dz, dy, dx = vol.spacing_mm
    return [
        (vol.array[k], dy / dx),
        (vol.array[:, j, :][::-1], dz / dx),
        (vol.array[:, :, i][::-1], dz / dy),
    ]


def lobes_figure() -> None:
    """LIDC-IDRI-0001 axial and coronal slices with lobe overlays through the LUNA16 nodule."""
    from matplotlib.colors import ListedColormap

    from medmm.anatomy import segment_anatomy

    if not LIDC.exists():
        return
    vol = load_series(LIDC)
    anatomy = segment_anatomy(vol)
    colours = ListedColormap(
        [
            (0, 0, 0, 0),
            (1, 0.2, 0.2, 0.4),
            (1, 0.9, 0.2, 0.4),
            (0.2, 0.9, 0.3, 0.4),
            (0.2, 0.5, 1, 0.4),
            (0.9, 0.3, 1, 0.4),
        ]
    )
    k, j, i = np.rint(vol.world_to_index([56.2, 86.3, -115.9])).astype(int)
    dz, dy, dx = vol.spacing_mm
    views = [
        (vol.array[k], anatomy.lobes.labels[k], dy / dx, "axial"),
        (vol.array[:, j, :][::-1], anatomy.lobes.labels[:, j, :][::-1], dz / dx, "coronal"),
        (vol.array[:, :, i][::-1], anatomy.lobes.labels[:, :, i][::-1], dz / dy, "sagittal (left lung)"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.6))
    for ax, (img, lab, aspect, name) in zip(axes, views, strict=True):
        ax.imshow(img, cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], aspect=aspect)
        ax.imshow(lab, cmap=colours, vmin=0, vmax=5, aspect=aspect, interpolation="nearest")
        ax.set_title(f"LIDC-IDRI-0001 {name}", fontsize=10)
        ax.axis("off")
    methods = ", ".join(f"{f.name}: {f.method}" for f in anatomy.lobes.fissures)
    fig.suptitle(f"Lobes: RUL red, RML yellow, RLL green, LUL blue, LLL violet ({methods})", fontsize=10)
    fig.tight_layout()
    out = OUT.parent / "lidc_lungs_lobes.png"
    fig.savefig(out, dpi=70)
    print(f"wrote {out}")


def html_report_figure() -> None:
    """Screenshot of the HTML report of a sample case, rendered by headless Chromium."""
    import shutil
    import subprocess
    import tempfile

    from medmm.pipeline import analyze
    from medmm.report import export_result

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        print("chromium not found; html_report.png not refreshed")
        return
    volume = load_series(ROOT / "sample_dicom" / "case_metastases" / "dicom")
    with tempfile.TemporaryDirectory() as tmp:
        rep = export_result(analyze(volume), Path(tmp), volume=volume, formats=["html"])
        url = rep.written[next(iter(rep.written))][0].resolve().as_uri()
        out = ROOT / "docs" / "images" / "html_report.png"
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1100,1500"]
        subprocess.run([exe, *flags, f"--screenshot={out}", url], check=True, capture_output=True, timeout=120)
    print(f"wrote {out}")


def viz_figures(froc_predictions: Path | None = None, froc_reference: Path | None = None) -> None:
    """The viewer's static figure, a nodule montage, a phrase's attention and (optionally) a FROC plot."""
    from medmm.fusion.align import ReportAligner
    from medmm.pipeline import analyze
    from medmm.viz import attention_figure, montage, plot_froc, static_figure

    images = ROOT / "docs" / "images"
    case = ROOT / "sample_dicom" / "case_metastases"
    volume = load_series(case / "dicom")
    result = analyze(volume)
    static_figure(volume, result).savefig(images / "viewer.png", dpi=70)
    montage(result, volume, max_nodules=4).savefig(images / "montage.png", dpi=70)
    phrase = "16 mm solid nodule in the left upper lobe"
    loc = ReportAligner().localize(volume, phrase, lobes=result.maps.lobes, nodules=result.nodules)
    attention_figure(volume, loc, result).savefig(images / "attention.png", dpi=70)
    print(f"wrote {images / 'viewer.png'}, {images / 'montage.png'} and {images / 'attention.png'}")
    if froc_predictions is not None and froc_reference is not None:
        from medmm.evaluate import evaluate_detections
        from medmm.evaluate.readers import read_predictions, read_synthetic_reference

        evaluation = evaluate_detections(read_predictions(froc_predictions), read_synthetic_reference(froc_reference))
        plot_froc(evaluation).savefig(images / "froc_heldout.png", dpi=80)
        print(f"wrote {images / 'froc_heldout.png'}")


def main() -> None:
    """Render the figures."""
    import argparse

    ap = argparse.ArgumentParser(description="Draw the figures in docs/images/.")
    ap.add_argument("--only", choices=["viz"], default=None, help="draw only the medmm.viz figures")
    ap.add_argument("--froc-predictions", type=Path, default=None, help="held-out candidates.csv")
    ap.add_argument("--froc-reference", type=Path, default=None, help="held-out `medmm synth` folder")
    args = ap.parse_args()
    viz_figures(args.froc_predictions, args.froc_reference)
    if args.only == "viz":
        return
    settings = ScannerSettings(Kernel.LUNG, slice_thickness_mm=1.25, matrix=512)
    case = generate_case(4, pattern=Pattern.SOLITARY_SPICULATED_UPPER_LOBE, scanner=settings, emphysema_rate=0)
    rows = [("medmm phantom (synthetic)", case.volume, np.asarray(case.nodules[0].center_lps_mm))]
    if LIDC.exists():
        real = load_series(LIDC)
        rows.append(("LIDC-IDRI-0001 (real)", real, np.array([56.2, 86.3, -115.9])))  # its LUNA16 nodule
    fig, axes = plt.subplots(len(rows), 3, figsize=(15, 5 * len(rows)), squeeze=False)
    for r, (title, vol, centre) in enumerate(rows):
        for c, ((img, aspect), name) in enumerate(
            zip(_views(vol, centre), ("axial", "coronal", "sagittal"), strict=True)
        ):
            ax = axes[r, c]
            ax.imshow(img, cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], aspect=aspect)
            ax.set_title(f"{title}: {name}", fontsize=10)
            ax.axis("off")
    fig.suptitle("Lung window L -600 / W 1500 HU; views through the (largest) nodule", fontsize=11)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=70)
    print(f"wrote {OUT}")
    lobes_figure()
    html_report_figure()


if __name__ == "__main__":
    main()
