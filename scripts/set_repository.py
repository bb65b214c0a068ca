"""Copy the course repository's URL from pyproject.toml to the places that cannot import it.

``[project.urls] Repository`` in pyproject.toml is the one place that names the repository
(``tltutor.REPOSITORY`` reads it). Two copies cannot read it, so this script writes them:

- the Colab cell of every notebook (it runs *before* tltutor is installed, so it must hold the
  URL itself): ``%pip install "tltutor @ git+<URL>"``;
- ``repository: url:`` in book/_config.yml (the book's launch, repository and issue buttons).

Only those lines change. ``--check`` changes nothing and exits 1 when a copy disagrees
(tests/test_repository.py runs the same check). After forking the course::

    # edit Repository = "https://github.com/<you>/<fork>" in pyproject.toml, then
    python scripts/set_repository.py
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
COLAB_MARK = '"google.colab" in sys.modules'
PIP_URL = re.compile(r'git\+[^"\'\s]+')
CONFIG_URL = re.compile(r"^(repository:\s*\n(?:[ \t]*#.*\n)*[ \t]+url:[ \t]*)(\S+)", re.MULTILINE)


def repository(root: pathlib.Path = ROOT) -> str:
    """``[project.urls] Repository`` of ``root/pyproject.toml``."""
    text = (root / "pyproject.toml").read_text()
    match = re.search(
        r'^\[project\.urls\][^\[]*?^Repository\s*=\s*"([^"]+)"',
        text,
        flags=re.MULTILINE | re.DOTALL,
    )
    if match is None:
        raise SystemExit(
            f'{root / "pyproject.toml"} has no [project.urls] Repository = "https://..."'
        )
    return match.group(1)


def colab_cells(notebook: dict) -> list[dict]:
    """The code cells that install tltutor on Colab."""
    return [
        cell
        for cell in notebook["cells"]
        if cell["cell_type"] == "code" and COLAB_MARK in "".join(cell["source"])
    ]


def notebook_urls(path: pathlib.Path) -> list[str]:
    """The git URLs the Colab cell of the notebook at ``path`` installs from."""
    notebook = json.loads(path.read_text())
    return [
        url[len("git+") :]
        for cell in colab_cells(notebook)
        for url in PIP_URL.findall("".join(cell["source"]))
    ]


def config_url(root: pathlib.Path = ROOT) -> str | None:
    """``repository: url:`` of book/_config.yml."""
    match = CONFIG_URL.search((root / "book" / "_config.yml").read_text())
    return match.group(2) if match else None


def disagreements(root: pathlib.Path = ROOT) -> list[str]:
    """Every copy of the repository URL that differs from pyproject.toml's, as readable lines."""
    url = repository(root)
    problems = []
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        found = notebook_urls(path)
        if found != [url]:
            problems.append(
                f"{path.relative_to(root)}: the Colab cell installs from {found or 'nothing'}, not {url}"
            )
    if config_url(root) != url:
        problems.append(f"book/_config.yml: repository url is {config_url(root)}, not {url}")
    return problems


def write(root: pathlib.Path = ROOT) -> list[pathlib.Path]:
    """Write pyproject.toml's URL into each Colab cell and book/_config.yml; return the files changed."""
    url = repository(root)
    changed = []
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        text = path.read_text()
        notebook = json.loads(text)
        for cell in colab_cells(notebook):
            source = "".join(cell["source"])
            cell["source"] = PIP_URL.sub(f"git+{url}", source).splitlines(keepends=True)
        new_text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
        if json.loads(new_text) != json.loads(text):
            path.write_text(new_text)
            changed.append(path)
    config = root / "book" / "_config.yml"
    text = config.read_text()
    new_text = CONFIG_URL.sub(lambda m: m.group(1) + url, text, count=1)
    if new_text != text:
        config.write_text(new_text)
        changed.append(config)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a copy disagrees"
    )
    args = parser.parse_args(argv)
    if args.check:
        problems = disagreements()
        print("\n".join(problems) or f"every copy names {repository()}")
        return 1 if problems else 0
    for path in write():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
