"""3D image filters for candidate search, on torch's multi-threaded CPU kernels.

The candidate search filters a ~300^3 voxel region at seven scales; SciPy's
``ndimage`` does that on one core. These are the same filters written with torch ops,
so both cores work (measured on LIDC-IDRI-0001: see ``benchmarks/bench_candidates.py``).
Each matches its SciPy counterpart to float32 rounding:

* :func:`gaussian` -- ``scipy.ndimage.gaussian_filter(x, sigma, mode="nearest")``
  (kernel radius ``int(4 sigma + 0.5)``, edge voxels repeated);
* :func:`laplacian` -- the 7-point second difference, zero on the border;
* :func:`local_max` -- ``x == scipy.ndimage.maximum_filter(x, size=3)``;
* :func:`resample_linear` -- ``scipy.ndimage.zoom(x, zoom, order=1, grid_mode=False)``
  (first and last voxel centres map onto each other).

All take and return NumPy arrays (float32 unless said otherwise) and work in voxel units.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional

__all__ = ["gaussian", "half", "laplacian", "local_max", "nearest_index", "resample_linear", "zoomed_shape"]


def _as_5d(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, None]


def _smoothing_matrix(n: int, sigma: float) -> torch.Tensor:
    """The ``(n, n)`` matrix of 1D Gaussian smoothing with repeated edges.

    Row ``i`` holds the kernel weights centred on ``i``; a tap that falls outside
    ``[0, n)`` adds its weight to the edge voxel, which is SciPy's ``mode="nearest"``.
    """
    radius = int(4.0 * sigma + 0.5)
    taps = np.arange(-radius, radius + 1)
    w = np.exp(-0.5 * (taps / sigma) ** 2)
    w /= w.sum()
    rows = np.repeat(np.arange(n), len(taps))
    cols = np.clip(rows + np.tile(taps, n), 0, n - 1)
    m = np.zeros((n, n), np.float64)
    np.add.at(m, (rows, cols), np.tile(w, n))
    return torch.from_numpy(m.astype(np.float32))


def gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing with the same ``sigma`` (voxels) on every axis, edges repeated.

    Each axis is one matrix product with a banded smoothing matrix: more arithmetic than
    a convolution, but BLAS runs it on every core (on LIDC-IDRI-0001 with 2 threads,
    1.2x SciPy's one-core filter at sigma 0.87 on the full region and 5-13x on the
    half-resolution scales; ``benchmarks/bench_candidates.py``).

    Shapes:
        - x: ``(K, J, I)``
        - Output: ``(K, J, I)``
    """
    k, j, i = x.shape
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    with torch.inference_mode():
        t = t.reshape(k * j, i) @ _smoothing_matrix(i, sigma).T  # last axis
        t = _smoothing_matrix(j, sigma) @ t.reshape(k, j, i)  # middle axis, batched over k
        t = (_smoothing_matrix(k, sigma) @ t.reshape(k, j * i)).reshape(k, j, i)  # first axis
    return t.numpy()


def laplacian(g: np.ndarray) -> np.ndarray:
    """Sum of central second differences (voxel units), zero on the border.

    Shapes:
        - g: ``(K, J, I)``
        - Output: ``(K, J, I)``
    """
    t = torch.from_numpy(np.ascontiguousarray(g, dtype=np.float32))
    out = torch.zeros_like(t)
    with torch.inference_mode():
        c = t[1:-1, 1:-1, 1:-1]
        inner = out[1:-1, 1:-1, 1:-1]
        torch.add(t[2:, 1:-1, 1:-1], t[:-2, 1:-1, 1:-1], out=inner)
        inner += t[1:-1, 2:, 1:-1]
        inner += t[1:-1, :-2, 1:-1]
        inner += t[1:-1, 1:-1, 2:]
        inner += t[1:-1, 1:-1, :-2]
        inner -= 6.0 * c
    return out.numpy()


def local_max(x: np.ndarray) -> np.ndarray:
    """Boolean map of voxels not exceeded by any of their 26 neighbours (ties count).

    The 3x3x3 maximum is separable: a running maximum of three along each axis in turn
    (the volume's edge is not padded: an edge voxel sees only its inner neighbours).

    Shapes:
        - x: ``(K, J, I)``
        - Output: ``(K, J, I)`` bool
    """
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    with torch.inference_mode():
        buffers = (torch.empty_like(t), torch.empty_like(t))
        src = t
        for axis in range(3):
            dst = buffers[axis % 2]
            n = t.shape[axis]
            if n < 2:
                dst.copy_(src)
            else:  # dst[i] = max(src[i-1], src[i], src[i+1]), the missing neighbour skipped at each end
                torch.maximum(src.narrow(axis, 0, n - 1), src.narrow(axis, 1, n - 1), out=dst.narrow(axis, 0, n - 1))
                dst.narrow(axis, n - 1, 1).copy_(src.narrow(axis, n - 1, 1))
                tail = dst.narrow(axis, 1, n - 1)
                torch.maximum(tail, src.narrow(axis, 0, n - 1), out=tail)
            src = dst
        return (t == src).numpy()


def half(x: np.ndarray) -> np.ndarray:
    """``x.astype(np.float16)`` on every core."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).half().numpy()


def zoomed_shape(shape: tuple[int, ...], zoom: list[float]) -> tuple[int, ...]:
    """The output shape ``scipy.ndimage.zoom`` gives: each axis rounded."""
    return tuple(round(n * z) for n, z in zip(shape, zoom, strict=True))


def nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each of ``n_out`` samples, ``scipy.ndimage.zoom(order=0, grid_mode=False)``'s.

    Shapes:
        - Output: ``(n_out,)``
    """
    ratio = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return np.clip(np.floor(np.arange(n_out) * ratio + 0.5).astype(np.int64), 0, n_in - 1)


def resample_linear(x: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Trilinear resampling onto ``shape``, the corner voxel centres kept in place.

    Shapes:
        - x: ``(K, J, I)``
        - Output: ``shape``
    """
    with torch.inference_mode():
        return functional.interpolate(_as_5d(x), size=shape, mode="trilinear", align_corners=True)[0, 0].numpy()
