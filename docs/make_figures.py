"""Draw docs/images/phantom_vs_lidc.png: a synthetic case next to LIDC-IDRI-0001.

Axial, coronal and sagittal slices of a full-resolution phantom (512 matrix, 1.25 mm)
beside the same views of the real LIDC-IDRI-0001 series, at one lung window
(level -600 HU, width 1500 HU). Needs matplotlib (``pip install -e .``) and
../shared/data/lidc-idri-0001 (the real panel is left out when it is absent).

Run from the repository root:
    python docs/make_figures.py
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


def main() -> None:
    """Render the figure."""
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


if __name__ == "__main__":
    main()
