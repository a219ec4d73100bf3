"""Coverage-guided fuzzing of the DICOM reader with atheris (libFuzzer), for long local runs.

The hypothesis tests in ``tests/fuzz`` run in CI; this harness lets libFuzzer's coverage
feedback drive byte mutations of one slice of a small valid series for as long as you
like. Same property: ``scan`` and ``load_series`` raise nothing but ``MedmmError``.

    pip install atheris
    python scripts/fuzz_atheris.py -max_total_time=600          # libFuzzer flags pass through
    python scripts/fuzz_atheris.py crash-<sha>                   # replay a crashing input
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import atheris
import numpy as np

with atheris.instrument_imports(include=["medmm"]):
    from medmm.errors import MedmmError
    from medmm.io import load_series, scan
    from medmm.synth.dicom_writer import SeriesTemplate, write_ct_series
    from medmm.types import Volume

_WORK = Path(tempfile.mkdtemp(prefix="medmm-atheris-"))
_AFFINE = np.array([[0, 0, 0.7, -5], [0, 0.7, 0, -5], [2.0, 0, 0, -2], [0, 0, 0, 1]], float)
_FILES = write_ct_series(
    Volume(np.random.default_rng(0).normal(-700, 50, (3, 16, 16)).astype(np.float32), _AFFINE),
    _WORK / "template",
    SeriesTemplate(seed=1),
)


def test_one_input(data: bytes) -> None:
    """Replace the middle slice by ``data``; read the folder; only MedmmError may escape."""
    folder = _WORK / "case"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for i, path in enumerate(_FILES):
        (folder / path.name).write_bytes(data if i == 1 else path.read_bytes())
    try:
        for series in scan(folder, workers=1).series:
            load_series(series, workers=1)
    except MedmmError:
        pass


def main() -> None:
    """Seed the corpus with the valid slice and hand over to libFuzzer."""
    corpus = _WORK / "corpus"
    corpus.mkdir(exist_ok=True)
    (corpus / "valid.dcm").write_bytes(_FILES[1].read_bytes())
    warnings.simplefilter("ignore")
    args = sys.argv + ([str(corpus)] if not any(Path(a).exists() for a in sys.argv[1:]) else [])
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
