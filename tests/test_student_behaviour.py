"""What students do, in a real kernel: checks run before the exercise, variables deleted or
overwritten with anything, a check cell re-run many times, answers that raise KeyboardInterrupt
or catch the stop request in an endless loop. Every check answers with a verdict that says what to
run or fix; nothing raises; re-running does not pile up button handlers; a runaway answer is
stopped, so the idle kernel goes back to using no CPU."""

import nbformat
from nbclient import NotebookClient

SWALLOW_STOP = """
def target_names_loop():
    while True:
        try:
            sum(range(100))
        except BaseException:  # catches the stop request too
            pass
"""

CELLS = [
    "from tltutor import exercises\n\n"
    '@exercises.exercise("99.0", "Name the classes", name="target_names")\n'
    "def check_names(answer):\n"
    '    return list(answer) == ["Sandal", "Shirt", "Sneaker"], "the three names."',
    'exercises.check("99.0");',  # the check before the exercise cell ran
    "target_names = None",  # the stub as the student copy has it
    'exercises.check("99.0");',
    'target_names = ["Sandal", "Shirt"]',  # a wrong answer
    'exercises.check("99.0");',
    "del target_names",  # deleted again
    'exercises.check("99.0");',
    "target_names = lambda: 1 / 0",  # overwritten with something absurd
    'exercises.check("99.0");',
    'target_names = ["Sandal", "Shirt", "Sneaker"]',
    'for _ in range(5):\n    exercises.check("99.0")',  # a check cell re-run again and again
    "panel = exercises._PANELS['99.0']\nprint('HANDLERS', len(panel.handlers))",
    # a function as the answer, run by the checker: it raises KeyboardInterrupt, then loops forever
    '@exercises.exercise("99.1", "Call it", name="f")\ndef check_f(f):\n    return f() == 1, "f() is 1."',
    "def f():\n    raise KeyboardInterrupt\nexercises.check('99.1', timeout=2);",
    SWALLOW_STOP + "f = target_names_loop\nexercises.check('99.1', timeout=1);",
    # three clicks on the Check button of the looping answer (issue 15: the kernel stayed at 75 % CPU)
    "(button,) = [b for b in exercises.panel('99.1').children[1].children if b.description == 'Check']\n"
    "for _ in range(3):\n    button.click()\n"
    "print('PANEL', exercises.panel('99.1').children[2].value)",
    "import threading, time\nstart = time.process_time()\ntime.sleep(1)\n"
    "print('IDLE_CPU', time.process_time() - start)\n"
    "print('CHECK_THREADS', sum(t.name == 'tltutor-check' for t in threading.enumerate()))",
]


def test_checks_survive_what_students_do():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=False).execute()
    outputs = [
        "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
        for cell in nb.cells
    ]
    assert (
        "there is no variable `target_names` yet; run the exercise cell above first" in outputs[1]
    )
    assert "not attempted" in outputs[3] and "still None" in outputs[3]
    assert "[ex 99.0] not yet" in outputs[5]
    assert "run the exercise cell above first" in outputs[7]
    assert "[ex 99.0] not yet" in outputs[9]
    assert outputs[11].count("[ex 99.0] correct") == 5
    handlers = int(outputs[12].split("HANDLERS")[1])
    assert handlers <= 2, f"{handlers} handlers after re-running the check 5 times"
    assert outputs[14] == "[ex 99.1] not yet: your answer raised KeyboardInterrupt.\n"
    assert outputs[15].startswith("[ex 99.1] not yet: your answer took longer than 1 s to check")
    assert (
        "took longer than 1 s" in outputs[16]
        and "replaces the verdict printed above" in outputs[16]
    )
    idle_cpu = float(outputs[17].split("IDLE_CPU")[1].split()[0])
    threads = int(outputs[17].split("CHECK_THREADS")[1])
    print(
        f"after the stop-swallowing loop and 3 clicks: {idle_cpu:.3f} CPU s in 1 s idle, {threads} check threads"
    )
    assert threads == 0 and idle_cpu < 0.2
