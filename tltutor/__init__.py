"""tltutor: the helper package of the tltutor transfer-learning course.

One module per idea: ``data`` (datasets and domain shifts), ``models``
(backbones, heads, freezing, BatchNorm diagnostics, checkpoint files),
``train`` (fitting, schedules, feature caches, LP-FT), ``sources`` (pretraining the
source models), ``adapt`` (domain adaptation), ``metrics`` (transferability scores),
``validation`` (the input checks they share), ``gpu`` (devices),
``exercises`` (self-checking widgets) and ``cli`` (``python -m tltutor``).
They import in one direction: validation <- data <- models <- train <- sources.

Modules are imported on use so that ``import tltutor`` stays fast:

>>> import tltutor
>>> tltutor.__version__
'0.1.0'
>>> tltutor.REPOSITORY.startswith("https://")
True

Imported before TensorFlow, it keeps TensorFlow's C++ start-up notices (CPU instruction
sets, oneDNN, "All log messages before absl::InitializeLog()") out of the notebooks: they
are not lessons. Set ``TF_CPP_MIN_LOG_LEVEL=0`` yourself to see them.
"""

import os as _os
import re as _re
import sys as _sys
from pathlib import Path as _Path


class _QuietTensorFlow:
    """Mutes the process's standard error (file descriptor 2) while TensorFlow is imported.

    On some CPUs (AMD EPYC with AVX-512 here) TensorFlow's C++ libraries print "All log messages
    before absl::InitializeLog()" and "oneDNN custom operations are on" as they load, whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says. An import hook: it acts once, on ``import tensorflow``.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        _sys.meta_path.remove(self)  # once: the real import below finds TensorFlow as usual
        from importlib.util import find_spec

        spec = find_spec(name)
        if spec is not None and spec.loader is not None:
            load = spec.loader.exec_module

            def exec_module(module):
                _sys.stderr.flush()
                saved, null = _os.dup(2), _os.open(_os.devnull, _os.O_WRONLY)
                _os.dup2(null, 2)
                try:
                    load(module)
                finally:
                    _os.dup2(saved, 2)
                    _os.close(saved)
                    _os.close(null)

            spec.loader.exec_module = exec_module
        return spec


if "tensorflow" not in _sys.modules:
    if _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2") != "0":
        _sys.meta_path.insert(0, _QuietTensorFlow())

__version__ = "0.1.0"


def _repository() -> str:
    """``[project.urls] Repository`` of pyproject.toml: the course's repository, named in one place.

    Read from the source tree's pyproject.toml when there is one (an editable install), else from
    the installed package's metadata.
    """
    pyproject = _Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():
        match = _re.search(
            r'^\[project\.urls\][^\[]*?^Repository\s*=\s*"([^"]+)"',
            pyproject.read_text(),
            flags=_re.MULTILINE | _re.DOTALL,
        )
        if match:
            return match.group(1)
    from importlib import metadata

    for entry in metadata.metadata("tltutor").get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "repository":
            return url.strip()
    raise RuntimeError('tltutor has no [project.urls] Repository = "https://..." in pyproject.toml')


#: The course repository (``[project.urls] Repository`` of pyproject.toml).
REPOSITORY = _repository()
