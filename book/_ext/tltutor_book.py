"""Small Sphinx fixes for the tltutor book (loaded through ``sphinx: local_extensions`` in _config.yml).

- **One copy of each script.** sphinx-thebe (which every Jupyter Book 1 site loads, although thebe
  is off here) adds its inline configuration, ``const THEBE_JS_URL = ...``, to the app in an
  ``env-before-read-docs`` handler, and it ended up twice in every page's head (Sphinx merges
  two copies only when they agree in every field, and an inline script's file name may be None
  in one copy and "" in the other): the second copy threw
  "Identifier 'THEBE_JS_URL' has already been declared". :func:`drop_duplicate_scripts` keeps
  the first copy of every script a page loads.
- **One search box on the search page.** The search page has its own search form; the sidebar's
  search field above it made two (three with the header's search button).
  :func:`drop_sidebar_search_on_search_page` hides the sidebar's field there.
"""

from __future__ import annotations

import os


def script_key(script) -> tuple:
    """What makes two script tags the same on the page: the file (None for inline code) and the
    attributes Sphinx writes out (the inline code is the ``body`` attribute; attributes set to None
    are not written). The priority only orders them.

    >>> from sphinx.builders.html._assets import _JavaScript
    >>> first = _JavaScript(None, body="const THEBE_JS_URL = 1")
    >>> again = _JavaScript("", priority=501, body="const THEBE_JS_URL = 1", defer=None)
    >>> first == again, script_key(first) == script_key(again)
    (False, True)
    """
    attributes = getattr(script, "attributes", {}) or {}
    shown = tuple(sorted((k, str(v)) for k, v in attributes.items() if v is not None))
    return os.fspath(getattr(script, "filename", script) or ""), shown


def drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    """Keep the first of identical script tags in a page's head."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def drop_sidebar_search_on_search_page(app, pagename, templatename, context, doctree) -> None:
    """On search.html the page's own form is the search box: no second one in the sidebar."""
    if pagename == "search":
        sidebars = context.get("sidebars")
        if sidebars:
            context["sidebars"] = [name for name in sidebars if "search" not in name]


def setup(app):
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    app.connect("html-page-context", drop_sidebar_search_on_search_page, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
