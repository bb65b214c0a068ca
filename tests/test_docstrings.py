"""Every docstring example in the package runs and prints what it says (they are the API's first docs)."""

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

import tltutor
import tltutor.checks

MODULES = sorted(
    [
        f"tltutor.{m.name}"
        for m in pkgutil.iter_modules(tltutor.__path__)
        if not m.name.startswith("_")
    ]
    + [f"tltutor.checks.{m.name}" for m in pkgutil.iter_modules(tltutor.checks.__path__)]
)


NEED_TENSORFLOW = {"tltutor.data", "tltutor.checks.nb07"}


@pytest.mark.parametrize("name", [m for m in MODULES if m not in ("tltutor.checks", "tltutor.cli")])
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    if name in NEED_TENSORFLOW and importlib.util.find_spec("tensorflow") is None:
        pytest.skip("its examples build tf.data pipelines")
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    if name.startswith("tltutor.checks."):
        module = importlib.reload(module)  # register its checkers again after other tests' resets
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0, (
        f"{result.failed} of {result.attempted} examples failed in {name} (see the output above)"
    )
