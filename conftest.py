"""Root pytest configuration: applies to tests/ and to the notebooks that nbval collects.

nbval runs every cell with ``store_history=False``. IPython then ignores a trailing ``;``,
so a check cell such as ``exercises.check("02.1", features);`` would show ``True`` under
nbval but not in JupyterLab, and nbval would report a different number of outputs. Running
cells with history, as Jupyter does, makes nbval see what students see.
"""

import nbval.kernel


def _execute_like_jupyter(self, cell_input, allow_stdin=None):
    return self.kc.execute(cell_input, store_history=True, allow_stdin=allow_stdin, stop_on_error=False)


nbval.kernel.RunningKernel.execute_cell_input = _execute_like_jupyter
