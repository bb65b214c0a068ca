"""What students do, in a real kernel: checks run before the exercise, variables deleted or
overwritten with anything, a check cell re-run many times. Every check answers with a verdict
that says what to run or fix; nothing raises; re-running does not pile up button handlers."""

import nbformat
from nbclient import NotebookClient

CELLS = [
    "from tltutor import exercises\nfrom tltutor.checks import nb00",
    'exercises.check("00.1");',                       # the check before the exercise cell ran
    "target_names = None",                            # the stub as the student copy has it
    'exercises.check("00.1");',
    'target_names = ["Sandal", "Shirt"]',             # a wrong answer
    'exercises.check("00.1");',
    "del target_names",                               # deleted again
    'exercises.check("00.1");',
    "target_names = lambda: 1 / 0",                   # overwritten with something absurd
    'exercises.check("00.1");',
    "from tltutor import data\ntarget_names = [data.FASHION_CLASSES[c] for c in data.TARGET_CLASSES]",
    'for _ in range(5):\n    exercises.check("00.1")',  # a check cell re-run again and again
    "panel = exercises._PANELS['00.1']\nprint('HANDLERS', len(panel.handlers))",
]


def test_checks_survive_what_students_do():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=False).execute()
    outputs = ["".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream") for cell in nb.cells]
    assert "there is no variable `target_names` yet; run the exercise cell above first" in outputs[1]
    assert "not attempted" in outputs[3] and "still None" in outputs[3]
    assert "[ex 00.1] not yet" in outputs[5]
    assert "run the exercise cell above first" in outputs[7]
    assert "[ex 00.1] not yet" in outputs[9]
    assert outputs[11].count("[ex 00.1] correct") == 5
    handlers = int(outputs[12].split("HANDLERS")[1])
    assert handlers <= 2, f"{handlers} handlers after re-running the check 5 times"
