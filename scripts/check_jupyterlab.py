"""Use the exercise panels in a real JupyterLab, in headless Chromium; save screenshots.

    python scripts/check_jupyterlab.py notebooks/00_setup.ipynb --out out/jupyterlab
    python scripts/check_jupyterlab.py --hostile --out out/jupyterlab

With a notebook: starts JupyterLab on a copy (the original is left untouched), runs all cells,
checks that every exercise panel rendered with a Check button, clicks the first panel's Check and
Hint buttons and waits for their feedback.

With ``--hostile``: runs a small notebook of answers that misbehave, as in issue 15, and checks that
each one leaves a clear panel state:

1. an answer that raises ``KeyboardInterrupt`` gets "not yet: your answer raised KeyboardInterrupt";
2. an answer that loops forever and catches the stop request (``except BaseException: pass``):
   the panel says "checking…" while the check runs, then "took longer than 1 s"; after three
   clicks on Check the kernel goes back to idle (its CPU use, read from /proc, is printed);
3. after a kernel restart, the old panel says "The kernel restarted ... run the notebook from
   the top" and its Check button is disabled.

A one-off check of what the headless tests cannot see (widget views in the real front end); it
needs Debian's Chromium at /usr/bin/chromium. Exit status 0 when every check held.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import nbformat
from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
HOSTILE_CELLS = [
    "from tltutor import exercises\n\n"
    '@exercises.exercise("99.1", "Call the answer", name="f", hints=["*Return* 1."])\n'
    "def check_f(f):\n"
    '    return f() == 1, "f() returns 1."',
    "def f():\n    raise KeyboardInterrupt\n",
    'exercises.check("99.1", timeout=1);',
    "def f():\n    while True:\n        try:\n            sum(range(100))\n"
    "        except BaseException:  # catches the stop request too\n            pass\n",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer at {url} within {timeout} s")


def kernel_pid(base: str, token: str) -> int | None:
    """The process id of the (only) running kernel, found by its connection file's name."""
    with urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=5) as response:
        kernels = json.load(response)
    if not kernels:
        return None
    wanted = f"kernel-{kernels[0]['id']}.json"
    for entry in pathlib.Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and wanted in (entry / "cmdline").read_bytes().decode(
                errors="replace"
            ):
                return int(entry.name)
        except OSError:
            continue
    return None


def cpu_share(pid: int, seconds: float = 3.0) -> float:
    """The share of one core a process used over ``seconds`` (from /proc/PID/stat)."""

    def ticks() -> int:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    start = ticks()
    time.sleep(seconds)
    return (ticks() - start) / os.sysconf("SC_CLK_TCK") / seconds


def open_notebook(page, base: str, token: str, name: str) -> None:
    page.goto(f"{base}/lab/tree/{name}?token={token}")
    page.wait_for_selector(".jp-Notebook", timeout=90_000)
    page.wait_for_timeout(3000)
    select = page.locator(".jp-Dialog button:has-text('Select')")
    if select.count():
        select.first.click()
    page.locator(".jp-Notebook").first.click()
    page.keyboard.press("Escape")


def run_all(page) -> None:
    page.get_by_role("menuitem", name="Run").first.click()
    page.get_by_text("Run All Cells", exact=True).first.click()
    page.wait_for_function(
        "document.querySelectorAll('.jp-Notebook .jp-InputArea-prompt').length > 0 && "
        "![...document.querySelectorAll('.jp-InputArea-prompt')].some(e => e.textContent.includes('[*]'))",
        timeout=300_000,
    )


def panel_of(check_button):
    return check_button.locator("xpath=ancestor::div[contains(@class, 'tltutor-panel')][1]")


def check_course_notebook(page, name: str, out: pathlib.Path) -> bool:
    """Run a course notebook, click the first panel's Check and Hint buttons."""
    run_all(page)
    checks = page.locator("button.widget-button:has-text('Check')")
    print(f"{name}: {checks.count()} Check buttons rendered")
    if checks.count() == 0:
        page.screenshot(path=str(out / f"{pathlib.Path(name).stem}_no_panels.png"))
        return False
    panel = panel_of(checks.first)
    panel.scroll_into_view_if_needed()
    checks.first.click()
    page.wait_for_timeout(1500)
    hint = panel.locator("button.widget-button:not([disabled]):has-text('Hint')")
    if hint.count():
        hint.first.click()
        page.wait_for_timeout(1000)
    text = panel.inner_text()
    print("first panel after Check and Hint:\n" + text[:600])
    panel.screenshot(path=str(out / f"{pathlib.Path(name).stem}_panel.png"))
    page.screenshot(path=str(out / f"{pathlib.Path(name).stem}_lab.png"))
    return "correct" in text or "not yet" in text or "not attempted" in text


def check_hostile_answers(page, base: str, token: str, out: pathlib.Path) -> bool:
    """The three panel states of issue 15, each with a screenshot; returns True when all held."""
    results = {}
    run_all(page)
    panel = panel_of(page.locator("button.widget-button:has-text('Check')").first)
    panel.scroll_into_view_if_needed()
    text = panel.inner_text()
    results["KeyboardInterrupt -> verdict"] = (
        "not yet: your answer raised KeyboardInterrupt" in text
    )
    panel.screenshot(path=str(out / "hostile_1_keyboardinterrupt.png"))

    # the looping answer: define it (last cell), then click Check three times
    page.locator(".jp-Notebook .jp-Cell").last.click()
    page.keyboard.press("Shift+Enter")
    page.wait_for_timeout(2000)
    button = panel.locator("button.widget-button:has-text('Check')")
    button.click()
    page.wait_for_timeout(300)
    results["'checking…' while the check runs"] = "checking…" in panel.inner_text()
    panel.screenshot(path=str(out / "hostile_2a_checking.png"))
    for click in range(3):
        page.wait_for_function("el => !el.disabled", arg=button.element_handle(), timeout=30_000)
        if click:
            button.click()
            page.wait_for_timeout(300)
    page.wait_for_function("el => !el.disabled", arg=button.element_handle(), timeout=30_000)
    page.wait_for_timeout(500)
    text = panel.inner_text()
    results["endless loop -> 'took longer than 1 s'"] = "took longer than 1 s" in text
    panel.screenshot(path=str(out / "hostile_2b_loop_stopped.png"))
    pid = kernel_pid(base, token)
    share = cpu_share(pid) if pid else float("nan")
    print(
        f"kernel CPU after 3 checks of the stop-swallowing loop: {share:.1%} of one core over 3 s"
    )
    results["kernel back to idle (< 5 % CPU)"] = share < 0.05

    # restart the kernel: the old panel must say so
    page.get_by_role("menuitem", name="Kernel").first.click()
    page.get_by_text("Restart Kernel…", exact=True).first.click()
    page.locator(".jp-Dialog button:has-text('Restart')").first.click()
    page.wait_for_timeout(4000)
    text = panel.inner_text()
    results["restart -> 'run the notebook from the top'"] = (
        "The kernel restarted" in text and "run the notebook from the top" in text
    )
    results["restart -> Check disabled"] = (
        panel.locator(".tltutor-check").evaluate("el => getComputedStyle(el).pointerEvents")
        == "none"
    )
    panel.screenshot(path=str(out / "hostile_3_restarted.png"))
    page.screenshot(path=str(out / "hostile_lab.png"))
    for name, held in results.items():
        print(f"{'ok  ' if held else 'FAIL'} {name}")
    return all(results.values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=pathlib.Path, nargs="?")
    parser.add_argument(
        "--hostile", action="store_true", help="run the misbehaving answers of issue 15"
    )
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out/jupyterlab"))
    args = parser.parse_args(argv)
    if (args.notebook is None) == (not args.hostile):
        parser.error("give a notebook or --hostile (one of them)")
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tltutor-lab-"))
    if args.hostile:
        name = "hostile_answers.ipynb"
        cells = [nbformat.v4.new_code_cell(source) for source in HOSTILE_CELLS]
        nbformat.write(nbformat.v4.new_notebook(cells=cells), workdir / name)
    else:
        name = args.notebook.name
        shutil.copy(args.notebook, workdir / name)
    port, token = free_port(), "tltutor-check"
    lab = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={workdir}",
            "--allow-root",
            "--LabApp.news_url=",
            "--ServerApp.open_browser=False",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/api/status?token={token}")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            open_notebook(page, base, token, name)
            ok = (
                check_hostile_answers(page, base, token, args.out)
                if args.hostile
                else check_course_notebook(page, name, args.out)
            )
            browser.close()
            print(f"screenshots in {args.out}/")
            return 0 if ok else 1
    finally:
        lab.terminate()
        lab.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
