"""Wall time and peak memory of medmm nodule detection vs the MONAI RetinaNet baseline, on LIDC-IDRI-0001.

Rows, each system measured in its own fresh subprocess (so every peak RSS is its own):

* ``medmm detection`` -- ``load_series`` + ``segment_lungs(volume).lung_mask`` +
  ``NoduleDetector().detect(volume, lung_mask)`` (the detection part of ``medmm analyze``);
  the detector's construction (loading the weights) is timed as well;
* ``medmm analyze`` -- ``load_series`` + ``medmm.pipeline.analyze(volume)`` (lungs, lobes,
  detection, lobe assignment);
* ``MONAI RetinaNet`` -- the detector of the MONAI model-zoo bundle ``lung_nodule_ct_detection``
  (``configs/inference.json``): 3D ResNet-50 (``conv1_t_stride=(2,2,1)``, ``conv1_t_size=7``) +
  FPN on returned layers [1, 2], 3 anchor shapes at feature-map scales [1, 2, 4],
  ``size_divisible=(16, 16, 8)``, box selector score 0.02 / top-k 1000 / NMS 0.22 /
  300 detections, sliding-window inference on 512x512x192 patches (overlap 0.25, constant
  blending) when the image is at least that large, as the bundle's ``RetinaNetInferer``
  decides. Its input is the same series (``load_series``), put in the bundle's order (channel
  first, RAS axes x, y, z) with MONAI's ``Orientation`` + ``Spacing`` to 0.703125 x 0.703125 x
  1.25 mm (bilinear) + ``ScaleIntensityRange`` -1024..300 HU -> 0..1 (clipped). Two rows: the
  model inference alone, and load + resample + network construction + inference.

The baseline runs with RANDOM weights (timing only; the bundle's checkpoint is not
downloaded), in float32 on the CPU (the bundle's AMP only applies on a GPU). Random weights
change how many boxes reach box selection and NMS, not the network's cost, which dominates.
Its peak RSS includes MONAI's ``Spacing`` resampling (float64 by default). medmm uses the shipped
weights (the default, ``medmm/weights/nodule_detector_v11.safetensors``) when present, otherwise a
randomly initialised ``NoduleNet(width=8)`` (noted in the output).

MONAI's detection code takes two helpers from torchvision (``IntermediateLayerGetter`` and
``_validate_trainable_layers``); torchvision must not be installed here (it would replace
the pinned torch), so this file provides small pure-torch stand-ins when it is absent.
Box NMS is MONAI's own pure-torch ``monai.data.box_utils.batched_nms``.

Wall time: median over ``--repeat`` fresh processes (imports excluded). Peak memory:
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at the end of each process (the whole process,
imports included), largest over the repeats. Torch uses ``--threads`` threads (default 2,
the target machine's cores; OMP/MKL/OpenBLAS are set to the same).

Targets (issue "Detection"): medmm detection under 20 s and under 4 GB peak on 2 cores, and
at least 5x faster than the baseline (end-to-end vs end-to-end).

Run (needs ``pip install -c constraints.txt -e .[bench]`` for MONAI; never torchvision)::

    python benchmarks/bench_detect.py [--folder PATH] [--repeat N] [--threads N]

Quick check with a small baseline (not the bundle's configuration)::

    python benchmarks/bench_detect.py --baseline-roi 128 128 64 --baseline-crop 192 192 96
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from torch import nn

DEFAULT_FOLDER = Path(__file__).resolve().parents[1].parent / "shared/data/lidc-idri-0001/series"
SYSTEMS = ("detect", "analyze", "baseline")
GIB = float(2**30)

# The bundle's values (model-zoo models/lung_nodule_ct_detection/configs/inference.json).
BUNDLE_SPACING_MM = (0.703125, 0.703125, 1.25)
BUNDLE_ROI = (512, 512, 192)
BUNDLE_HU_RANGE = (-1024.0, 300.0)


# --------------------------------------------------------------------------- medmm workers


def _medmm_detector() -> tuple[Any, str]:
    """The shipped detector, or a random ``NoduleNet(width=8)`` when the weights are absent."""
    from medmm.detect import NoduleDetector, NoduleNet
    from medmm.detect.weights import default_weights_path
    from medmm.errors import CheckpointError

    path = default_weights_path()
    if path.is_file():
        try:
            return NoduleDetector(), f"shipped weights {path.name}"
        except CheckpointError as exc:
            note = f"shipped weights unusable ({exc}); random NoduleNet(width=8)"
    else:
        note = f"{path.name} absent; random NoduleNet(width=8)"
    return NoduleDetector(model=NoduleNet(width=8)), note


def run_detect(folder: Path) -> dict[str, Any]:
    from medmm.anatomy import segment_lungs
    from medmm.io import load_series

    t0 = time.perf_counter()
    volume = load_series(folder)
    t1 = time.perf_counter()
    lung_mask = segment_lungs(volume).lung_mask
    t2 = time.perf_counter()
    detector, note = _medmm_detector()
    dets = detector.detect(volume, lung_mask)
    t3 = time.perf_counter()
    return {
        "wall_s": t3 - t0,
        "parts": {"load": t1 - t0, "lungs": t2 - t1, "detect": t3 - t2},
        "detections": len(dets),
        "note": note,
    }


def run_analyze(folder: Path) -> dict[str, Any]:
    from medmm.io import load_series
    from medmm.pipeline import analyze

    t0 = time.perf_counter()
    volume = load_series(folder)
    t1 = time.perf_counter()
    detector, note = _medmm_detector()
    result = analyze(volume, detector=detector)
    t2 = time.perf_counter()
    return {
        "wall_s": t2 - t0,
        "parts": {"load": t1 - t0, "analyze": t2 - t1},
        "detections": len(result.candidates or ()),
        "note": f"{note}; {len(result.nodules or ())} nodule(s) >= threshold",
    }


# --------------------------------------------------------------------------- MONAI baseline


class _IntermediateLayerGetter(nn.ModuleDict):
    """Pure-torch stand-in for ``torchvision.models._utils.IntermediateLayerGetter``.

    Keeps the model's children up to the last requested one and returns the requested
    children's outputs, renamed by ``return_layers``, in order.
    """

    def __init__(self, model: Any, return_layers: dict[str, str]) -> None:
        wanted = {str(k): str(v) for k, v in return_layers.items()}
        names = [name for name, _ in model.named_children()]
        if not set(wanted).issubset(names):
            raise ValueError("return_layers are not present in model")
        layers: OrderedDict[str, Any] = OrderedDict()
        left = set(wanted)
        for name, module in model.named_children():
            layers[name] = module
            left.discard(name)
            if not left:
                break
        super().__init__(layers)
        self.return_layers = wanted

    def forward(self, x: Any) -> dict[str, Any]:
        out: OrderedDict[str, Any] = OrderedDict()
        for name, module in self.items():
            x = module(x)
            if name in self.return_layers:
                out[self.return_layers[name]] = x
        return out


def _validate_trainable_layers(is_trained: bool, layers: int | None, max_value: int, default_value: int) -> int:
    """Pure-Python stand-in for torchvision's ``backbone_utils._validate_trainable_layers``."""
    if not is_trained:
        layers = max_value  # no pretrained backbone: nothing is frozen
    if layers is None:
        layers = default_value
    if not 0 <= layers <= max_value:
        raise ValueError(f"trainable layers should be in [0, {max_value}], got {layers}")
    return layers


def _install_torchvision_standins() -> bool:
    """Point MONAI's optional torchvision imports at the local stand-ins (only if torchvision is absent)."""
    import importlib.util
    from types import SimpleNamespace

    if importlib.util.find_spec("torchvision") is not None:
        return False
    import monai.apps.detection.networks.retinanet_network as retinanet_network
    import monai.networks.blocks.backbone_fpn_utils as backbone_fpn_utils

    backbone_fpn_utils.torchvision_models = SimpleNamespace(  # type: ignore[attr-defined]
        _utils=SimpleNamespace(IntermediateLayerGetter=_IntermediateLayerGetter)
    )
    retinanet_network._validate_trainable_layers = _validate_trainable_layers  # type: ignore[attr-defined]
    return True


def _bundle_detector(roi: tuple[int, int, int]) -> Any:
    """The bundle's RetinaNetDetector (random weights), as ``inference.json`` builds it."""
    from monai.apps.detection.networks.retinanet_detector import RetinaNetDetector
    from monai.apps.detection.networks.retinanet_network import RetinaNet, resnet_fpn_feature_extractor
    from monai.apps.detection.utils.anchor_utils import AnchorGeneratorWithAnchorShape
    from monai.networks.nets import resnet

    anchor_generator = AnchorGeneratorWithAnchorShape(
        feature_map_scales=[1, 2, 4], base_anchor_shapes=[[6, 8, 4], [8, 6, 5], [10, 10, 6]]
    )
    backbone = resnet.resnet50(spatial_dims=3, n_input_channels=1, conv1_t_stride=[2, 2, 1], conv1_t_size=[7, 7, 7])
    feature_extractor = resnet_fpn_feature_extractor(backbone, 3, False, [1, 2], None)
    network = RetinaNet(
        spatial_dims=3,
        num_classes=1,
        num_anchors=3,
        feature_extractor=feature_extractor,
        size_divisible=[16, 16, 8],
        use_list_output=False,
    )
    detector = RetinaNetDetector(
        network=network, anchor_generator=anchor_generator, spatial_dims=3, num_classes=1, size_divisible=[16, 16, 8]
    )
    detector.set_target_keys(box_key="box", label_key="label")
    detector.set_box_selector_parameters(
        score_thresh=0.02, topk_candidates_per_level=1000, nms_thresh=0.22, detections_per_img=300
    )
    detector.set_sliding_window_inferer(
        roi_size=list(roi), overlap=0.25, sw_batch_size=1, mode="constant", device="cpu"
    )
    return detector.eval()


def _bundle_input(volume: Any) -> Any:
    """The bundle's preprocessing on a medmm volume: channel first, RAS, 0.703x0.703x1.25 mm, 0..1."""
    import numpy as np
    import torch
    from monai.data import MetaTensor
    from monai.transforms import Orientation, ScaleIntensityRange, Spacing

    # medmm: array (z, y, x), affine maps (k, j, i) to LPS mm. MONAI: (x, y, z) with a RAS affine.
    affine = np.asarray(volume.affine, dtype=np.float64)[:, [2, 1, 0, 3]]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    array = np.ascontiguousarray(np.asarray(volume.array, dtype=np.float32).transpose(2, 1, 0))
    image = MetaTensor(torch.from_numpy(array)[None], affine=torch.from_numpy(affine))
    image = Orientation(axcodes="RAS")(image)
    image = Spacing(pixdim=BUNDLE_SPACING_MM, mode="bilinear")(image)
    lo, hi = BUNDLE_HU_RANGE
    return ScaleIntensityRange(a_min=lo, a_max=hi, b_min=0.0, b_max=1.0, clip=True)(image)


def run_baseline(folder: Path, roi: tuple[int, int, int], crop: tuple[int, int, int] | None) -> dict[str, Any]:
    import torch

    from medmm.io import load_series

    standins = _install_torchvision_standins()
    t0 = time.perf_counter()
    volume = load_series(folder)
    image = _bundle_input(volume)
    if crop is not None:  # quick checks only: a centred sub-volume
        starts = [max(0, (s - c) // 2) for s, c in zip(image.shape[1:], crop, strict=True)]
        image = image[
            :, starts[0] : starts[0] + crop[0], starts[1] : starts[1] + crop[1], starts[2] : starts[2] + crop[2]
        ]
    image = torch.as_tensor(image).float().contiguous()  # plain tensor, as after the bundle's collation
    t1 = time.perf_counter()
    detector = _bundle_detector(roi)
    t2 = time.perf_counter()
    # scripts/detection_inferer.py: sliding window only when the image is not smaller than the ROI.
    use_inferer = image[0].numel() >= int(torch.tensor(roi).prod())
    with torch.no_grad():
        out = detector([image], use_inferer=use_inferer)
    t3 = time.perf_counter()
    return {
        "wall_s": t3 - t0,
        "infer_s": t3 - t2,
        "parts": {"load+resample": t1 - t0, "build": t2 - t1, "inference": t3 - t2},
        "detections": len(out[0]["box"]),
        "note": (
            f"input {tuple(image.shape[1:])} (x, y, z), roi {roi}, "
            f"{'sliding window' if use_inferer else 'whole image'}, random weights"
            + ("; torchvision stand-ins" if standins else "")
            + ("; torchvision imported!" if "torchvision" in sys.modules else "")
        ),
    }


def worker(name: str, args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # random weights (fallback NoduleNet, baseline): same each run
    if name == "detect":
        res = run_detect(args.folder)
    elif name == "analyze":
        res = run_analyze(args.folder)
    else:
        res = run_baseline(args.folder, tuple(args.baseline_roi), tuple(args.baseline_crop or ()) or None)
    res["peak_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps(res))


# --------------------------------------------------------------------------- driver


def measure(name: str, args: argparse.Namespace) -> dict[str, Any] | str:
    """Run ``name`` ``--repeat`` times, each in a fresh process; medians (peak: the largest) or an error."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name, "--folder", str(args.folder)]
    cmd += ["--threads", str(args.threads), "--baseline-roi", *map(str, args.baseline_roi)]
    if args.baseline_crop:
        cmd += ["--baseline-crop", *map(str, args.baseline_crop)]
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(args.threads)
    runs = []
    for _ in range(args.repeat):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            return f"failed (exit {proc.returncode}): {tail}"
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    res = dict(runs[-1])
    res["wall_s"] = statistics.median(r["wall_s"] for r in runs)
    if "infer_s" in res:
        res["infer_s"] = statistics.median(r["infer_s"] for r in runs)
    res["parts"] = {k: statistics.median(r["parts"][k] for r in runs) for k in runs[-1]["parts"]}
    res["peak_bytes"] = max(r["peak_bytes"] for r in runs)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="medmm nodule detection vs the MONAI RetinaNet bundle: time and peak RSS.")
    ap.add_argument("--folder", type=Path, default=DEFAULT_FOLDER, help="the LIDC-IDRI-0001 DICOM series folder")
    ap.add_argument("--repeat", type=int, default=1, help="fresh processes per system; the median is reported")
    ap.add_argument("--threads", type=int, default=2, help="torch (and OMP/MKL) threads; the target has 2 cores")
    ap.add_argument(
        "--baseline-roi",
        type=int,
        nargs=3,
        default=list(BUNDLE_ROI),
        metavar=("X", "Y", "Z"),
        help="baseline sliding-window size (default: the bundle's 512 512 192; smaller only for quick checks)",
    )
    ap.add_argument(
        "--baseline-crop",
        type=int,
        nargs=3,
        default=None,
        metavar=("X", "Y", "Z"),
        help="quick checks only: run the baseline on a centred crop of the resampled image",
    )
    ap.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS), help="what to measure")
    ap.add_argument("--one", choices=SYSTEMS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.folder = args.folder.resolve()
    if not args.folder.is_dir():
        print(f"skipped: data absent ({args.folder} not found; pass --folder PATH)")
        return 0
    if args.one:
        worker(args.one, args)
        return 0

    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 150)
    quick = tuple(args.baseline_roi) != BUNDLE_ROI or args.baseline_crop
    console.print(
        f"series: {args.folder}; threads: {args.threads}; repeat: {args.repeat} (median wall, largest peak RSS)"
    )
    results: dict[str, dict[str, Any] | str] = {}
    for name in args.systems:
        console.print(f"running {name} ...")
        results[name] = measure(name, args)

    ref = results.get("detect")
    ref_wall = ref["wall_s"] if isinstance(ref, dict) else None
    table = Table(title="Nodule detection on LIDC-IDRI-0001")
    for col, justify in (("system", "left"), ("wall s", "right"), ("peak RSS GiB", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    table.add_column("time / medmm detection", justify="right")
    table.add_column("detections", justify="right")
    table.add_column("breakdown s / notes")

    def ratio(wall: float) -> str:
        return f"{wall / ref_wall:.2f}x" if ref_wall else "-"

    labels = {
        "detect": "medmm detection (load+lungs+detect)",
        "analyze": "medmm analyze (load+all stages)",
        "baseline": "MONAI RetinaNet (end-to-end)",
    }
    for name in args.systems:
        res = results[name]
        if isinstance(res, str):
            table.add_row(labels[name], "-", "-", "-", "-", res)
            continue
        parts = ", ".join(f"{k} {v:.2f}" for k, v in res["parts"].items())
        peak = f"{res['peak_bytes'] / GIB:.2f}"
        if name == "baseline":
            table.add_row(
                "MONAI RetinaNet (inference only)",
                f"{res['infer_s']:.2f}",
                peak,
                ratio(res["infer_s"]),
                str(res["detections"]),
                "same process as the end-to-end row",
            )
        table.add_row(labels[name], f"{res['wall_s']:.2f}", peak, ratio(res["wall_s"]), str(res["detections"]), parts)
    console.print(table)
    for name in args.systems:
        res = results[name]
        if isinstance(res, dict) and res.get("note"):
            console.print(f"note ({name}): {res['note']}", markup=False)
    if quick:
        console.print(
            "NOTE: --baseline-roi/--baseline-crop differ from the bundle: baseline numbers are NOT comparable"
        )

    if isinstance(ref, dict):
        wall, peak = ref["wall_s"], ref["peak_bytes"] / GIB
        ok = wall < 20 and peak < 4
        console.print(
            f"target: medmm detection < 20 s and < 4 GiB -> {wall:.1f} s, {peak:.2f} GiB: {'PASS' if ok else 'FAIL'}"
        )
        base = results.get("baseline")
        if isinstance(base, dict):
            speedup = base["wall_s"] / wall
            console.print(
                f"target: >= 5x faster than the baseline (end-to-end) -> {speedup:.1f}x "
                f"(inference only: {base['infer_s'] / wall:.1f}x): {'PASS' if speedup >= 5 else 'FAIL'}"
                + (" (quick baseline settings: not comparable)" if quick else "")
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
