"""Build the course's Jupyter Book: one command, offline after the first JavaScript fetch.

    python scripts/build_book.py                      # notebooks/ -> book/_build/html
    python scripts/build_book.py --notebooks DIR      # or: TLTUTOR_NOTEBOOKS=DIR
    python scripts/build_book.py --fresh              # re-execute every notebook

Steps:

1. ``scripts/fetch_widget_js.sh``: the widget and maths JavaScript the site serves itself
   (pinned in book/package-lock.json; does nothing when the copies are current).
2. ``book/course_map.py`` draws the course map of the intro page.
3. Every ``NN_name.ipynb`` of the notebooks folder is copied to ``book/notebooks/`` (gitignored)
   with its solutions collapsed (see :func:`collapse_solutions`); other files of the folder
   (companion modules, small data) are copied as they are.
4. ``book/_toc.yml`` is written: the intro, the notebooks in number order, the reference pages.
5. The execution cache (``book/_build/.jupyter_cache``, keyed on each notebook's code) is
   emptied when anything else that shapes the outputs changed: the tltutor package, Python or a
   key library version, the Keras backend, or a companion file of the notebooks.
6. With ``--jobs N`` (N > 1), the notebooks the cache lacks are executed N at a time, the
   longest first, exactly as step 7 would execute them, and cached (:func:`execute_in_parallel`);
   those that start worker processes of their own (``train.map_seeds``) one at a time.
7. ``jupyter-book build book -W -n --keep-going --all``: every notebook is executed (or taken
   from the fresh cache); any warning, broken reference, unknown citation or glossary term, or
   a failing cell fails the build.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import copy
import hashlib
import importlib.metadata
import importlib.util
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
NOTEBOOK_NAME = re.compile(r"^(\d{2})_[A-Za-z0-9_]+\.ipynb$")
SKIPPED = {".ipynb_checkpoints", "__pycache__", ".DS_Store"}
# Libraries whose version changes what an executed notebook shows.
TRACKED = [
    "keras",
    "tensorflow",
    "tensorflow-cpu",
    "jax",
    "torch",
    "numpy",
    "scikit-learn",
    "scikit-image",
    "mlxtend",
    "matplotlib",
    "ipywidgets",
    "ipykernel",
    "myst-nb",
]
REFERENCE_PAGES = ["glossary", "bibliography", "troubleshooting", "performance"]
INSTRUCTOR_PAGES = ["instructor_guide"]


def collapse_solutions(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return a copy of ``nb`` whose solutions sit behind a toggle in the book.

    - a code cell tagged ``exercise`` (it holds ``### BEGIN SOLUTION``) gets ``hide-input``:
      its source folds under "Show the solution", its output (the check's verdict) stays;
    - a quiz cell (``exercises.quiz(...)`` or ``exercises.match(...)``) also gets ``remove-stdout``:
      its printed lines hold the verdict of the solution's choice; what the book shows instead is
      the quiz unanswered, its answer folded under "Show the answer" (the HTML that
      ``exercises.quiz`` displays when ``TLTUTOR_BOOK=1``, which :func:`build` sets);
    - a code cell tagged ``solution`` gets ``hide-cell`` ("Show the worked answer");
    - a markdown cell tagged ``solution`` is wrapped in a "Worked answer" dropdown.

    Cells already tagged ``hide-*`` or ``remove-*`` are left as they are.

    >>> nb = nbformat.v4.new_notebook(cells=[
    ...     nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["exercise"]}),
    ...     nbformat.v4.new_markdown_cell("Because.", metadata={"tags": ["solution"]}),
    ...     nbformat.v4.new_code_cell('choice = 1\\nexercises.quiz("00.q1", choice=choice);',
    ...                               metadata={"tags": ["exercise", "check"]})])
    >>> out = collapse_solutions(nb)
    >>> out.cells[0].metadata.tags, out.cells[0].metadata.mystnb["code_prompt_show"]
    (['exercise', 'hide-input'], 'Show the solution')
    >>> out.cells[2].metadata.tags
    ['exercise', 'check', 'hide-input', 'remove-stdout']
    >>> print(out.cells[1].source)
    :::{dropdown} Worked answer
    Because.
    :::
    """
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if any(tag.startswith(("hide-", "remove-")) for tag in tags):
            continue
        if cell.cell_type == "code" and ("exercise" in tags or "solution" in tags):
            tag, what = (
                ("hide-input", "the solution")
                if "exercise" in tags
                else ("hide-cell", "the worked answer")
            )
            quiz = re.search(r"\bexercises\.(quiz|match)\(", cell.source) is not None
            cell.metadata["tags"] = [*tags, tag, *(["remove-stdout"] if quiz else [])]
            cell.metadata["mystnb"] = {
                **cell.metadata.get("mystnb", {}),
                "code_prompt_show": f"Show {what}",
                "code_prompt_hide": f"Hide {what}",
            }
        elif cell.cell_type == "markdown" and "solution" in tags:
            # A fence longer than any colon fence inside, so that nested directives still work.
            fence = ":" * max(
                3, 1 + max((len(m) for m in re.findall(r"^:{3,}", cell.source, re.M)), default=0)
            )
            cell.source = f"{fence}{{dropdown}} Worked answer\n{cell.source}\n{fence}"
    return nb


def find_notebooks(folder: Path) -> list[Path]:
    """The course notebooks in ``folder`` (``NN_name.ipynb``), in number order.

    Raises ``FileNotFoundError`` when there are none and ``ValueError`` when two share a number.
    """
    if not folder.is_dir():
        raise FileNotFoundError(
            f"notebooks folder {folder} does not exist; pass --notebooks DIR "
            "or set TLTUTOR_NOTEBOOKS"
        )
    notebooks = sorted(p for p in folder.iterdir() if NOTEBOOK_NAME.match(p.name))
    if not notebooks:
        raise FileNotFoundError(
            f"no course notebooks in {folder}: the book takes files named "
            "NN_name.ipynb (two digits, an underscore, a name), e.g. 00_setup.ipynb"
        )
    numbers = [NOTEBOOK_NAME.match(p.name).group(1) for p in notebooks]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        raise ValueError(
            f"two notebooks in {folder} share the number(s) {', '.join(duplicates)}; "
            "renumber them so that the order of the book is unambiguous"
        )
    return notebooks


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` atomically unless ``path`` already holds it (keeps mtimes for Sphinx)."""
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)
    return True


def sync_notebooks(source: Path, dest: Path) -> list[Path]:
    """Mirror ``source`` into ``dest``: course notebooks with solutions collapsed, other files as
    they are, stale files removed. Returns the copied notebooks, in order."""
    notebooks = find_notebooks(source)
    wanted: dict[Path, bytes] = {}
    for path in notebooks:
        nb = collapse_solutions(nbformat.read(path, as_version=4))
        wanted[dest / path.name] = (nbformat.writes(nb) + "\n").encode()
    for path in source.rglob("*"):
        relative = path.relative_to(source)
        if (
            path.is_file()
            and path.suffix != ".ipynb"
            and not any(part in SKIPPED or part.startswith(".") for part in relative.parts)
        ):
            wanted[dest / relative] = path.read_bytes()
    for path, data in wanted.items():
        write_if_changed(path, data)
    if dest.is_dir():
        for path in sorted(dest.rglob("*"), reverse=True):
            if path.is_file() and path not in wanted:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    return [dest / p.name for p in notebooks]


def write_toc(notebooks: list[Path], source: Path) -> None:
    """Write book/_toc.yml: intro, the notebooks, the reference and instructor pages."""

    def chapters(files):
        return "".join(f"      - file: {f}\n" for f in files)

    toc = (
        f"# Written by scripts/build_book.py from the notebooks in {source}; do not edit.\n"
        "format: jb-book\nroot: intro\nparts:\n"
        "  - caption: The course\n    chapters:\n"
        + chapters(f"notebooks/{p.stem}" for p in notebooks)
        + "  - caption: Reference\n    chapters:\n"
        + chapters(REFERENCE_PAGES)
        + "  - caption: For instructors\n    chapters:\n"
        + chapters(INSTRUCTOR_PAGES)
    )
    write_if_changed(BOOK / "_toc.yml", toc.encode())


def fingerprint(support: Path) -> str:
    """A hash of what, besides a notebook's code, changes its executed outputs: the tltutor
    package, Python and key library versions, the Keras backend, and the files in ``support``
    other than notebooks (companion modules, small data)."""
    digest = hashlib.sha256(sys.version.encode())
    for name in TRACKED:
        try:
            digest.update(f"{name}=={importlib.metadata.version(name)}".encode())
        except importlib.metadata.PackageNotFoundError:
            pass
    digest.update(os.environ.get("KERAS_BACKEND", "").encode())
    spec = importlib.util.find_spec("tltutor")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            f"tltutor is not installed in this Python; run `pip install -e .` with {sys.executable}"
        )
    for folder in (Path(spec.origin).parent, support):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix != ".ipynb" and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(folder)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def check_kernel() -> None:
    """Fail early, with the fix, when the notebooks' kernel cannot import tltutor."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        argv = KernelSpecManager().get_kernel_spec("python3").argv
    except NoSuchKernel:
        return  # nbclient then starts ipykernel in this very Python
    python = argv[0]
    if python in {"python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"}:
        return  # jupyter_client runs these with this very Python
    if subprocess.run([python, "-c", "import tltutor"], capture_output=True).returncode != 0:
        raise RuntimeError(
            f"the 'python3' Jupyter kernel runs {python}, which cannot import tltutor. Install the "
            f"kernel of this environment: {sys.executable} -m ipykernel install --sys-prefix --name python3"
        )


def execute_in_parallel(
    notebooks: list[Path],
    *,
    jobs: int,
    env: dict[str, str],
    cache_path: Path = BOOK / "_build" / ".jupyter_cache",
    timeout: int | None = None,
) -> list[Path]:
    """Execute the notebooks that the execution cache lacks, ``jobs`` at a time, into that cache.

    The longest notebooks (``budget_s`` in their metadata) start first. Each runs as myst-nb runs
    it in ``jupyter-book build`` (its own folder as working directory, ``execute.timeout`` of
    book/_config.yml per cell, errors not allowed) and is cached under the key myst-nb looks up,
    so the build then takes it from the cache. A notebook's lab-scale training leaves part of a
    second core idle (single-threaded Python between small batches): two at a time finish the
    set sooner on 2 cores, while each one's own time grows. A notebook that starts worker
    processes (:func:`uses_workers`) keeps the cores busy by itself, so those run one at a time,
    in a lane of their own beside the ``jobs - 1`` lanes of the others. Notebooks that fail are not cached;
    the others are, and ``RuntimeError`` then names the failures with their tracebacks.
    ``timeout`` (seconds per cell) defaults to book/_config.yml's. Returns the executed notebooks.
    """
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(cache_path))
    pending = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        try:
            cache.match_cache_notebook(nb)
        except KeyError:
            budget = float(nb.metadata.get("tltutor", {}).get("budget_s", 60))
            pending.append((budget, path, uses_workers(nb)))
    if len(pending) < 2:
        return []  # nothing to overlap: jupyter-book executes it
    if timeout is None:
        timeout = yaml.safe_load((BOOK / "_config.yml").read_text())["execute"]["timeout"]
    failures, executed = [], []
    context = multiprocessing.get_context("spawn")  # a clean process per worker, on every OS
    lanes = _lanes(pending, jobs)
    print(
        f"build_book: executing {len(pending)} notebooks: "
        + "; ".join(
            f"{', '.join(p.stem[:2] for p in paths)} {size} at a time" for size, paths in lanes
        )
    )
    with contextlib.ExitStack() as stack:
        pools = [
            stack.enter_context(concurrent.futures.ProcessPoolExecutor(size, mp_context=context))
            for size, _ in lanes
        ]
        running = {
            pool.submit(_execute, str(path), timeout, env): path
            for pool, (_, paths) in zip(pools, lanes)
            for path in paths
        }
        try:
            for done in concurrent.futures.as_completed(running):
                path = running[done]
                nb, seconds, error = done.result()
                if error is not None:
                    failures.append(f"{path.name}:\n{error}")
                    continue
                record = cache.add_nb_to_project(str(path))
                bundle = CacheBundleIn(nb, record.uri, data={"execution_seconds": seconds})
                cache.cache_notebook_bundle(bundle, check_validity=False, overwrite=True)
                executed.append(path)
                print(f"build_book: {path.stem} executed in {seconds:.0f} s")
        except KeyboardInterrupt:
            for pool in pools:
                pool.shutdown(cancel_futures=True)  # the notebooks not started yet never start
            raise
    if failures:
        raise RuntimeError("a notebook failed while executing:\n" + "\n".join(failures))
    return executed


def uses_workers(nb: nbformat.NotebookNode) -> bool:
    """Whether a notebook's code calls ``train.map_seeds``, which starts worker processes.

    >>> uses_workers(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("train.map_seeds(run, SEEDS)")]))
    True
    """
    return any(cell.cell_type == "code" and "map_seeds(" in cell.source for cell in nb.cells)


def _lanes(pending: list[tuple[float, Path, bool]], jobs: int) -> list[tuple[int, list[Path]]]:
    """(processes, notebooks longest first) per lane, from (budget, path, uses workers) rows: the
    notebooks that start workers one at a time, the others ``jobs - 1`` at a time (all ``jobs``
    when no notebook starts workers)."""
    ordered = sorted(pending, key=lambda row: row[:2], reverse=True)
    with_workers = [path for _, path, workers in ordered if workers]
    others = [path for _, path, workers in ordered if not workers]
    if not with_workers or not others:
        return [(jobs if others else 1, [path for _, path, _ in ordered])]
    return [(1, with_workers), (max(jobs - 1, 1), others)]


def _execute(path: str, timeout: int, env: dict[str, str]) -> tuple[dict, float, str | None]:
    """One notebook executed in a worker process: (executed notebook, seconds, traceback or None)."""
    from jupyter_cache.executors.utils import single_nb_execution

    os.environ.update(env)  # the kernel inherits this process's environment
    nb = nbformat.read(path, as_version=4)
    try:
        result = single_nb_execution(
            nb, cwd=str(Path(path).parent), timeout=timeout, allow_errors=False, meta_override=True
        )
    except BaseException:  # a kernel that died, or Ctrl-C: a failure like a cell that raised
        return nb, 0.0, traceback.format_exc()
    return result.nb, result.time, result.exc_string


def build(notebooks_dir: Path, *, fresh: bool = False, jobs: int = 1) -> Path:
    """Run every step of the module docstring; returns the folder of the built site."""
    started = time.perf_counter()
    subprocess.run(["bash", str(ROOT / "scripts" / "fetch_widget_js.sh")], check=True)
    subprocess.run(
        [sys.executable, str(BOOK / "course_map.py")], check=True, stdout=subprocess.DEVNULL
    )
    notebooks = sync_notebooks(notebooks_dir, BOOK / "notebooks")
    print(
        f"build_book: {len(notebooks)} notebooks from {notebooks_dir}: "
        + ", ".join(p.stem for p in notebooks)
    )
    write_toc(notebooks, notebooks_dir)
    check_kernel()

    build_dir = BOOK / "_build"
    stamp = build_dir / "tltutor-fingerprint.txt"
    current = fingerprint(BOOK / "notebooks")
    if fresh or not stamp.is_file() or stamp.read_text().strip() != current:
        print(
            "build_book: tltutor or a library changed (or --fresh): every notebook is re-executed"
        )
        shutil.rmtree(build_dir / ".jupyter_cache", ignore_errors=True)
    env = dict(os.environ)
    # TensorFlow's C++ start-up notices (CPU instruction sets) are not lessons; keep them off the pages.
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Quizzes show unanswered, their answer folded away (see collapse_solutions); the code the
    # book executes is the notebook's own, unchanged.
    env["TLTUTOR_BOOK"] = "1"
    if jobs > 1:
        execute_in_parallel(notebooks, jobs=jobs, env=env)
    # A fresh site every time: every page is rewritten (--all; notebooks unchanged since the last
    # build come from the cache), and pages of notebooks no longer in the book do not linger.
    shutil.rmtree(build_dir / "html", ignore_errors=True)
    command = [
        sys.executable,
        "-c",
        "from jupyter_book.cli.main import main; main()",
        "build",
        str(BOOK),
        "-W",
        "-n",
        "--keep-going",
        "--all",
    ]
    result = subprocess.run(command, env=env)
    if result.returncode != 0:
        raise SystemExit(
            f"build_book: jupyter-book failed (exit {result.returncode}); the first warning "
            f"or error above says what and where (book/notebooks/ holds build copies of "
            f"{notebooks_dir}: fix the notebooks there)"
        )
    build_dir.mkdir(exist_ok=True)
    write_if_changed(stamp, (current + "\n").encode())
    html = build_dir / "html"
    print(f"build_book: done in {time.perf_counter() - started:.0f} s: {html / 'index.html'}")
    return html


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--notebooks",
        type=Path,
        default=Path(os.environ.get("TLTUTOR_NOTEBOOKS", ROOT / "notebooks")),
        help="folder of NN_name.ipynb notebooks (default: $TLTUTOR_NOTEBOOKS or notebooks/)",
    )
    parser.add_argument("--fresh", action="store_true", help="empty the execution cache first")
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.environ.get("TLTUTOR_BOOK_JOBS", str(min(2, os.cpu_count() or 1))),
        help="notebooks executed at a time (default: $TLTUTOR_BOOK_JOBS, else 2, or 1 on one core)",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1; got {args.jobs}")
    try:
        build(args.notebooks.resolve(), fresh=args.fresh, jobs=args.jobs)
    except (FileNotFoundError, ValueError, RuntimeError, ModuleNotFoundError) as exc:
        print(f"build_book: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "build_book: stopped (Ctrl-C); the notebooks executed before it are cached, so the "
            "next build starts from there",
            file=sys.stderr,
        )
        return 130
    except subprocess.CalledProcessError as exc:
        print(
            f"build_book: {' '.join(map(str, exc.cmd))} failed (exit {exc.returncode})",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
