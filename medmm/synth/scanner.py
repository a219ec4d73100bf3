"""Scanner effects: reconstruction-kernel blur, slice profile, and correlated noise.

Each reconstruction kernel trades sharpness for noise. The point-spread function is
modelled as a Gaussian in-plane (sigma per kernel) and the slice sensitivity profile as a
Gaussian whose FWHM is the nominal slice thickness. Noise is white Gaussian noise
filtered to a short correlation length and scaled to the kernel's standard deviation,
growing with patient size (attenuation rises with diameter; noise roughly doubles per
~8 cm of water-equivalent diameter at fixed dose -- see e.g. AAPM Report 204, 2011).
Typical noise levels at routine chest dose are about 10-20 HU for soft/standard kernels
and 40-80 HU for sharp lung kernels.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import ndimage

from medmm.types import Volume

__all__ = ["Kernel", "ScannerSettings", "apply_scanner"]


class Kernel(StrEnum):
    """Reconstruction kernel family (vendor names differ: e.g. B30f ~ standard, B70f ~ lung)."""

    SOFT = "soft"
    STANDARD = "standard"
    LUNG = "lung"
    BONE = "bone"


# (in-plane PSF sigma in mm, noise standard deviation in HU for a 30 cm-wide patient)
KERNEL_PARAMS: dict[Kernel, tuple[float, float]] = {
    Kernel.SOFT: (0.9, 10.0),
    Kernel.STANDARD: (0.7, 16.0),
    Kernel.LUNG: (0.45, 45.0),
    Kernel.BONE: (0.35, 65.0),
}
DICOM_KERNEL_NAMES: dict[Kernel, str] = {
    Kernel.SOFT: "SOFT",
    Kernel.STANDARD: "STANDARD",
    Kernel.LUNG: "LUNG",
    Kernel.BONE: "BONE",
}


@dataclass(frozen=True)
class ScannerSettings:
    """Acquisition and reconstruction choices.

    Attributes:
        kernel: Reconstruction kernel.
        slice_thickness_mm: Nominal thickness (slice profile FWHM).
        matrix: Rows = columns of the reconstructed image.
        dose_factor: Relative dose (noise scales with 1/sqrt(dose)).
    """

    kernel: Kernel = Kernel.STANDARD
    slice_thickness_mm: float = 1.25
    matrix: int = 512
    dose_factor: float = 1.0

    @classmethod
    def sample(cls, rng: np.random.Generator, matrix: int = 512) -> ScannerSettings:
        """Draw settings seen in chest CT practice (thickness 0.625-3 mm)."""
        return cls(
            kernel=Kernel(rng.choice([k.value for k in Kernel], p=[0.15, 0.4, 0.4, 0.05])),
            slice_thickness_mm=float(rng.choice([0.625, 1.0, 1.25, 2.0, 2.5, 3.0], p=[0.1, 0.2, 0.3, 0.15, 0.15, 0.1])),
            matrix=matrix,
            dose_factor=float(rng.uniform(0.5, 1.5)),
        )


def apply_scanner(
    volume: Volume, settings: ScannerSettings, rng: np.random.Generator, body_width_mm: float = 300.0
) -> Volume:
    """Blur and add noise as the chosen reconstruction would.

    Args:
        volume: Noise-free HU volume on the output grid.
        settings: Kernel, thickness, dose.
        rng: Noise source.
        body_width_mm: Patient's left-right width (larger patients are noisier).

    Returns:
        The scanned volume, clipped to the 12-bit CT range [-1024, 3071].
    """
    psf_mm, noise_hu = KERNEL_PARAMS[settings.kernel]
    dz, dy, dx = volume.spacing_mm
    slice_sigma_mm = settings.slice_thickness_mm / 2.355
    sigma = (
        max(0.0, np.sqrt(max(slice_sigma_mm**2 - (dz / 2.355) ** 2, 0.0)) / dz),
        psf_mm / dy,
        psf_mm / dx,
    )
    out = ndimage.gaussian_filter(volume.array.astype(np.float32), sigma=sigma, mode="nearest")
    size_factor = 2.0 ** ((body_width_mm - 300.0) / 80.0)
    # Thicker slices average more photons: noise ~ 1/sqrt(thickness), relative to 1.25 mm.
    target = noise_hu * size_factor * np.sqrt(1.25 / settings.slice_thickness_mm) / np.sqrt(settings.dose_factor)
    noise = rng.standard_normal(out.shape, dtype=np.float32)
    corr_px = (0.0, 0.6 * 0.7 / dy, 0.6 * 0.7 / dx)
    noise = ndimage.gaussian_filter(noise, sigma=corr_px)
    noise *= np.float32(target / (noise.std() + 1e-6))
    out += noise
    np.clip(out, -1024.0, 3071.0, out=out)
    return Volume(out, volume.affine, volume.info)
