"""The built book, tested in a real browser (Playwright for Python driving Debian's Chromium).

    python scripts/build_book.py && pytest -m book tests/test_book.py
    TLTUTOR_BUILD_BOOK=1 pytest -m book tests/test_book.py    # builds the book first

The site in book/_build/html is served on localhost. Every page must load without console
errors, page errors or failed requests, and without a single request to another host (the book
works offline: widgets and maths are served from the site itself). Figures and widget outputs
of the executed notebooks must render, solutions open and close, search finds "negative
transfer", and prev/next links walk the whole book. Screenshots of every page go to
book/_build/screenshots/. Chromium is never downloaded: the test uses /usr/bin/chromium
(or $TLTUTOR_CHROMIUM) and skips when there is none.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "book" / "_build" / "html"
BOOK_NOTEBOOKS = ROOT / "book" / "notebooks"  # the copies the book was built from
EXECUTION_CACHE = ROOT / "book" / "_build" / ".jupyter_cache"
SCREENSHOTS = ROOT / "book" / "_build" / "screenshots"
CHROMIUM = Path(os.environ.get("TLTUTOR_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-default-apps",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
WIDGET_VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]'
# No page error or console error is filtered as "known noise": the theme's two were fixed at
# their cause (book/_ext/tltutor_book.py drops sphinx-thebe's duplicated inline script that threw
# "Identifier 'THEBE_JS_URL' has already been declared"; _config.yml sets html_context.default_mode
# against pydata-sphinx-theme's "Got invalid theme mode").
# Blocks that could need sideways scrolling: code, printed output, tables.
WIDE_BLOCKS = ".cell_input pre, .cell_output pre, .cell_output table"
# a rendered widget's root element (a control without a kernel is "jupyter-widgets-disconnected")
RENDERED_WIDGET = ".widget-subarea > .lm-Widget"
VIEWPORTS = {"desktop": (1366, 900), "phone": (390, 844)}


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def site() -> Path:
    """The built site; built first when TLTUTOR_BUILD_BOOK=1."""
    if os.environ.get("TLTUTOR_BUILD_BOOK") == "1":
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "build_book.py")], check=True, cwd=ROOT
        )
    elif not (HTML / "intro.html").is_file():
        pytest.skip(
            "book/_build/html does not exist: build the book with `python scripts/build_book.py` "
            "(or `make book`), or set TLTUTOR_BUILD_BOOK=1 to build it here"
        )
    return HTML


@pytest.fixture(scope="session")
def base_url(site: Path):
    """The site served by a quiet http.server on a free localhost port."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=site)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt install chromium (or set TLTUTOR_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Visit:
    """One browser tab that records every problem a page shows."""

    def __init__(self, context, base_url: str):
        self.base_url = base_url
        self.problems: list[str] = []
        self.page = context.new_page()
        self.page.on("pageerror", self._page_error)
        self.page.on("console", self._console)
        self.page.on("requestfailed", lambda r: self._local_failure(r.url, r.failure))
        self.page.on(
            "response", lambda r: r.status >= 400 and self._local_failure(r.url, f"HTTP {r.status}")
        )

    def _page_error(self, error) -> None:
        self.problems.append(f"page error: {error.message}")

    def _console(self, message) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text}")

    def _local_failure(self, url: str, why) -> None:
        if urlparse(url).hostname in LOCAL_HOSTS:  # outside hosts are recorded by the route
            self.problems.append(f"request failed ({why}): {url}")

    def open(self, path: str) -> None:
        self.page.goto(self.base_url + path, wait_until="load")
        self.settle()

    def settle(self) -> None:
        """Wait until scripts, widgets and maths are done; record what never finishes."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        self.page.wait_for_load_state("networkidle")
        waits = {
            "widgets did not render": (
                WIDGET_VIEW,
                """views => Array.from(document.querySelectorAll(views))
                .every(view => view.parentElement.querySelector('"""
                + RENDERED_WIDGET
                + """'))""",
            ),
            "maths was not typeset by MathJax": (
                ".math",
                "() => document.querySelector('mjx-container')",
            ),
        }
        for problem, (selector, done) in waits.items():
            if self.page.locator(selector).count():
                try:
                    self.page.wait_for_function(done, arg=selector, timeout=20_000)
                except PlaywrightTimeout:
                    self.problems.append(f"{problem} within 20 s")

    @property
    def path(self) -> str:
        return unquote(urlparse(self.page.url).path).lstrip("/")


@pytest.fixture
def context(browser):
    """A browser context that refuses every request to another host; the test fails if any
    page made one (the book must work offline and must not tell third parties who reads it)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    outside: list[str] = []

    def route(route):
        if urlparse(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            outside.append(f"{route.request.frame.url} -> {route.request.url}")
            route.abort()

    context.route("**/*", route)
    yield context
    context.close()
    assert not outside, "requests to other hosts:\n  " + "\n  ".join(sorted(set(outside)))


@pytest.fixture
def visit(context, base_url):
    return lambda: Visit(context, base_url)


# ------------------------------------------------------------------ helpers


def site_pages(site: Path) -> list[str]:
    """Every HTML page of the site, as paths relative to its root."""
    skip = {"_static", "_sources", "_images"}
    return sorted(
        p.relative_to(site).as_posix()
        for p in site.rglob("*.html")
        if not skip & set(p.relative_to(site).parts)
    )


def executed_outputs(page: str) -> tuple[int, int, set[str]]:
    """(figures, widget views, widget model names) of the executed notebook behind ``page``,
    read from the build's execution cache; (0, 0, set()) for pages that are not notebooks."""
    source = BOOK_NOTEBOOKS / Path(page).with_suffix(".ipynb").name
    if not page.startswith("notebooks/") or not source.is_file():
        return 0, 0, set()
    import nbformat
    from jupyter_cache import get_cache

    cache = get_cache(str(EXECUTION_CACHE))
    try:
        record = cache.match_cache_notebook(nbformat.read(source, as_version=4))
    except KeyError:
        pytest.fail(
            f"{source.name} is not in the execution cache: rebuild with scripts/build_book.py"
        )
    nb = cache.get_cache_bundle(record.pk).nb
    images = views = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                views += 1
            elif any(key.startswith("image/") for key in data):
                images += 1
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    models = {model.get("model_name", "") for model in state.get("state", {}).values()}
    return images, views, models


def widest_block(page) -> dict:
    """The code, output or table block of a page that sticks out furthest past its own box."""
    return page.evaluate(
        """selector => {
        let worst = {overflow: 0, width: 0, text: ""};
        for (const el of document.querySelectorAll(selector)) {
            const overflow = el.scrollWidth - el.clientWidth;
            if (overflow > worst.overflow) {
                worst = {overflow, width: el.scrollWidth, text: el.textContent.trim().slice(0, 60)};
            }
        }
        worst.page = document.documentElement.scrollWidth - window.innerWidth;
        return worst;
    }""",
        WIDE_BLOCKS,
    )


def screenshot_name(page: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", page.removesuffix(".html")) + ".png"


# ------------------------------------------------------------------ tests


def test_every_page_loads_cleanly_offline_with_figures_and_widgets(site, visit):
    pages = site_pages(site)
    assert "intro.html" in pages and "glossary.html" in pages and "bibliography.html" in pages
    notebooks = [p for p in pages if p.startswith("notebooks/")]
    assert notebooks, "the book has no notebook pages"
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    report: dict[str, list[str]] = {}
    for page in pages:
        tab = visit()
        tab.open(page)
        problems = tab.problems
        broken = tab.page.evaluate(
            "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
        )
        problems += [f"image did not load or is empty: {src}" for src in broken]
        images, views, models = executed_outputs(page)
        shown_images = tab.page.locator(".cell_output img").count()
        if shown_images < images:
            problems.append(
                f"{images} figures in the executed notebook, {shown_images} on the page"
            )
        scripts = tab.page.locator(WIDGET_VIEW).count()
        rendered = tab.page.locator(RENDERED_WIDGET).count()
        if scripts != views or rendered < views:
            problems.append(
                f"{views} widget outputs in the executed notebook, {scripts} on the page, "
                f"{rendered} rendered"
            )
        if (
            any("Slider" in name for name in models)
            and not tab.page.locator(".widget-slider").count()
        ):
            problems.append("the notebook shows a slider but the page renders none")
        tab.page.screenshot(path=str(SCREENSHOTS / screenshot_name(page)), full_page=True)
        tab.page.close()
        if problems:
            report[page] = problems
    assert not report, "\n".join(
        f"{page}:\n  " + "\n  ".join(lines) for page, lines in report.items()
    )
    assert len(list(SCREENSHOTS.glob("*.png"))) == len(pages)


def test_intro_shows_the_course_map(visit):
    tab = visit()
    tab.open("intro.html")
    course_map = tab.page.locator("img.tltutor-course-map")
    assert course_map.count() == 1
    size = course_map.evaluate(
        "i => [i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width]"
    )
    assert size[0] > 300 and size[1] > 100 and size[2] > 300, size
    assert not tab.problems, tab.problems


def test_solutions_open_and_close(site, visit):
    pages = [p for p in site_pages(site) if "tag_exercise" in (site / p).read_text()]
    assert pages, "no page shows an exercise cell (a code cell tagged `exercise`)"
    for page in pages:
        tab = visit()
        tab.open(page)
        toggle = tab.page.locator(".cell.tag_exercise details.hide").first
        code = toggle.locator(".cell_input")
        summary = toggle.locator("summary")
        assert summary.inner_text().strip() == "Show the solution", page
        assert not code.is_visible(), f"{page}: the solution is visible before opening it"
        summary.click()
        assert toggle.evaluate("d => d.open") and code.is_visible(), (
            f"{page}: the solution did not open"
        )
        assert "BEGIN SOLUTION" in code.inner_text()
        assert summary.inner_text().strip() == "Hide the solution", page
        summary.click()
        assert not toggle.evaluate("d => d.open") and not code.is_visible(), (
            f"{page}: it did not close"
        )
        for answer in tab.page.locator(
            "details.sd-dropdown:has(summary:has-text('Worked answer'))"
        ).all():
            assert not answer.locator(".sd-summary-content").is_visible(), (
                f"{page}: worked answer shown"
            )
            answer.locator("summary").click()
            assert answer.locator(".sd-summary-content").is_visible(), (
                f"{page}: worked answer did not open"
            )
            answer.locator("summary").click()
            assert not answer.evaluate("d => d.open"), f"{page}: worked answer did not close"
        assert not tab.problems, (page, tab.problems)
        tab.page.close()


def test_widget_controls_say_they_need_a_kernel(site, visit):
    pages = [p for p in site_pages(site) if WIDGET_VIEW.split('"')[1] in (site / p).read_text()]
    assert pages, "no page shows a widget"
    tab = visit()
    tab.open(pages[0])
    note = tab.page.locator(".tltutor-kernel-note")
    assert note.count() == 0
    tab.page.locator(".jupyter-widgets").locator("button, .noUi-handle, input").first.click()
    assert note.is_visible() and "needs a running notebook" in note.inner_text()
    note.locator("button").click()
    assert not note.is_visible()
    assert not tab.problems, tab.problems


def test_search_finds_negative_transfer(visit):
    tab = visit()
    tab.open("intro.html")
    tab.page.locator(".search-button__button:visible").first.click()
    field = tab.page.locator("#pst-search-dialog input[type=search]")
    field.fill("negative transfer")
    field.press("Enter")
    tab.page.wait_for_url("**/search.html?q=negative*")
    results = tab.page.locator("#search-results ul.search li")
    results.first.wait_for(timeout=20_000)
    links = results.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert any(link.startswith("glossary.html") for link in links), links
    assert not tab.problems, tab.problems


def test_prev_next_walk_the_whole_book_in_order(visit):
    tab = visit()
    tab.open("intro.html")
    sidebar = tab.page.locator("nav.bd-docs-nav a.reference.internal").evaluate_all(
        "links => links.map(a => a.href)"
    )
    order = list(
        dict.fromkeys(
            ["intro.html"] + [unquote(urlparse(href).path).lstrip("/") for href in sidebar]
        )
    )
    assert len(order) >= 5, order

    def walk(direction: str) -> list[str]:
        seen = [tab.path]
        while tab.page.locator(f"a.{direction}").count():
            link = tab.page.locator(f"a.{direction}")
            title = link.locator(".prev-next-title").inner_text().strip()
            with tab.page.expect_navigation(wait_until="domcontentloaded"):
                link.click()
            assert tab.page.locator("h1").first.inner_text().strip().rstrip("#").strip() == title
            seen.append(tab.path)
            assert len(seen) <= len(order), seen
        return seen

    assert walk("right-next") == order
    assert walk("left-prev") == order[::-1]
    # tab.problems is not checked here: leaving a page before its widgets and maths have loaded
    # aborts their requests. The every-page test checks each page loaded to the end.


def test_launch_buttons_point_at_the_repository_notebooks(site, visit):
    import yaml

    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())
    repo = config["repository"]["url"].rstrip("/")
    branch = config["repository"]["branch"]
    org_repo = urlparse(repo).path.strip("/")
    page = next(p for p in site_pages(site) if p.startswith("notebooks/"))
    notebook = (
        Path(page).with_suffix(".ipynb").as_posix()
    )  # notebooks/NN_name.ipynb in the repository
    tab = visit()
    tab.open(page)
    hrefs = tab.page.locator(".dropdown-launch-buttons a").evaluate_all(
        "links => links.map(a => a.href)"
    )
    expected = [
        f"https://colab.research.google.com/github/{org_repo}/blob/{branch}/{notebook}",
        f"https://mybinder.org/v2/gh/{org_repo}/{branch}?urlpath=lab/tree/{notebook}",
    ]
    if config["launch_buttons"].get("jupyterhub_url"):
        expected.append(
            config["launch_buttons"]["jupyterhub_url"].rstrip("/") + "/hub/user-redirect/git-pull?"
        )
    for url in expected:
        assert any(href.startswith(url) for href in hrefs), (url, hrefs)
    assert not tab.problems, tab.problems


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_nothing_needs_sideways_scrolling(site, browser, base_url, viewport):
    """Issue 18: at 1366 px, up to 35 blocks per notebook page needed sideways scrolling (up to
    6,118 px). Output wraps; the widest block of every notebook page must fit its box."""
    width, height = VIEWPORTS[viewport]
    context = browser.new_context(viewport={"width": width, "height": height})
    report = []
    try:
        for page_path in [p for p in site_pages(site) if p.startswith("notebooks/")]:
            page = context.new_page()
            page.goto(base_url + page_path, wait_until="load")
            worst = widest_block(page)
            print(
                f"{viewport} {page_path}: widest block sticks out {worst['overflow']} px "
                f"({worst['text']!r}); page {worst['page']} px wider than the window"
            )
            if worst["overflow"] > 1 or worst["page"] > 1:
                report.append(f"{page_path}: {worst}")
            page.close()
    finally:
        context.close()
    assert not report, "blocks that need sideways scrolling:\n  " + "\n  ".join(report)


def test_quizzes_show_unanswered_with_the_answer_folded(site, visit):
    pages = [p for p in site_pages(site) if "tltutor-quiz" in (site / p).read_text()]
    assert pages, "no page shows a quiz"
    for page in pages:
        tab = visit()
        tab.open(page)
        for quiz in tab.page.locator(".cell.tag_exercise .tltutor-quiz").all():
            answer = quiz.locator("details")
            assert not answer.evaluate("d => d.open"), page
            assert "Show the answer" in answer.locator("summary").inner_text()
            cell = quiz.locator("xpath=ancestor::div[contains(@class, 'cell')][1]")
            assert "correct:" not in cell.inner_text(), f"{page}: a quiz shows its verdict"
            answer.locator("summary").click()
            assert "The answer is" in answer.inner_text() or ":" in answer.inner_text()
        assert not tab.problems, (page, tab.problems)
        tab.page.close()


def test_the_search_page_has_one_search_box(visit):
    tab = visit()
    tab.open("search.html?q=transfer")
    boxes = tab.page.locator("input[type=search]:visible, input[name=q]:visible")
    assert boxes.count() == 1, [b.evaluate("e => e.outerHTML.slice(0, 120)") for b in boxes.all()]
    assert not tab.problems, tab.problems
