"""Click through a notebook's exercises in a real JupyterLab, in headless Chromium; save screenshots.

    python scripts/check_jupyterlab.py notebooks/00_setup.ipynb --out out/jupyterlab

Starts JupyterLab on a copy of the notebook (the original is left untouched), runs all cells,
checks that every exercise panel rendered with a Check button, clicks the first panel's
Check and Hint buttons and waits for their feedback. A one-off check of what the headless tests
cannot see (widget views in the real front end); it needs Debian's Chromium at /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=pathlib.Path)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out/jupyterlab"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tltutor-lab-"))
    shutil.copy(args.notebook, workdir / args.notebook.name)
    port, token = free_port(), "tltutor-check"
    lab = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={workdir}", "--allow-root", "--LabApp.news_url=", "--ServerApp.open_browser=False"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/api/status?token={token}")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/{args.notebook.name}?token={token}")
            page.wait_for_selector(".jp-Notebook", timeout=90_000)
            page.wait_for_timeout(3000)
            select = page.locator(".jp-Dialog button:has-text('Select')")
            if select.count():
                select.first.click()
            page.locator(".jp-Notebook").first.click()
            page.keyboard.press("Escape")
            page.get_by_role("menuitem", name="Run").first.click()
            page.get_by_text("Run All Cells", exact=True).first.click()
            page.wait_for_function("document.querySelectorAll('.jp-Notebook .jp-InputArea-prompt').length > 0 && "
                                   "![...document.querySelectorAll('.jp-InputArea-prompt')].some(e => e.textContent.includes('[*]'))",
                                   timeout=300_000)
            checks = page.locator("button.widget-button:has-text('Check')")
            print(f"{args.notebook.name}: {checks.count()} Check buttons rendered")
            if checks.count() == 0:
                page.screenshot(path=str(args.out / f"{args.notebook.stem}_no_panels.png"), full_page=False)
                return 1
            panel = checks.first.locator("xpath=ancestor::div[contains(@class, 'widget-vbox')][1]")
            panel.scroll_into_view_if_needed()
            checks.first.click()
            page.wait_for_timeout(1500)
            hint = panel.locator("button.widget-button:not([disabled]):has-text('Hint')")
            if hint.count():
                hint.first.click()
                page.wait_for_timeout(1000)
            text = panel.inner_text()
            print("first panel after Check and Hint:\n" + text[:600])
            panel.screenshot(path=str(args.out / f"{args.notebook.stem}_panel.png"))
            page.screenshot(path=str(args.out / f"{args.notebook.stem}_lab.png"))
            browser.close()
            return 0 if ("correct" in text or "not yet" in text or "not attempted" in text) else 1
    finally:
        lab.terminate()
        lab.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
