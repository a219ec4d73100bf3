"""Every notebook under notebooks/ runs headless, top to bottom, without error."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_are_stored_without_outputs() -> None:
    nbformat = pytest.importorskip("nbformat")
    assert NOTEBOOKS
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        for cell in book.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} has stored outputs"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_headless(path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    book = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    t0 = time.monotonic()
    client.execute()  # raises CellExecutionError on any error
    elapsed = time.monotonic() - t0
    assert elapsed < 240, f"{path.name} took {elapsed:.0f} s (budget: 2 minutes on 2 idle cores)"
    if path.stem == "01_quickstart":
        shown = [o for c in book.cells for o in c.get("outputs", []) if "data" in o]
        assert any("application/vnd.jupyter.widget-view+json" in o["data"] for o in shown), "show() gave no widget"
        assert any("image/png" in o["data"] for o in shown), "montage() gave no figure"
