"""Notebook 05's lessons hold for the third seed too.

nbval runs the solution notebook with ``SEED = 0`` and ``tests/test_notebooks.py`` the student
copy with ``SEED = 1``; this test runs the solution notebook with ``SEED = 2``, so that the claim
"a negative transfer gap below -3 points that holds over seeds 0, 1 and 2, and a remedy that
removes it" is checked on every seed the notebook names. The notebook's cells tagged ``lesson``
hold the assertions; any failing cell fails the test. About two minutes on 2 CPU cores.
"""

import pathlib
import re

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "05_negative_transfer.ipynb"


@pytest.mark.slow
def test_lessons_hold_with_seed_2():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    parameters = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    parameters.source, count = re.subn(r"(?m)^SEED\s*=.*$", "SEED = 2", parameters.source)
    assert count == 1
    assert sum("lesson" in c.metadata.get("tags", []) for c in nb.cells) >= 5
    NotebookClient(
        nb,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    printed = "\n".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "random_labels: features" in printed and "keep scratch" in printed
