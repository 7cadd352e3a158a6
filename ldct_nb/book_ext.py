"""A small Sphinx extension for the book build (listed in ``_config.yml``).

Jupyter Book 1 with current sphinx-thebe / sphinx-togglebutton registers some
inline scripts twice; the second ``const THEBE_JS_URL`` declaration is a
JavaScript error on every page. This extension drops duplicate script entries
from each page's context, so the pages load without console errors.
"""
from __future__ import annotations


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        filename = getattr(script, "filename", script) or ""  # inline scripts: None or ""
        key = (str(filename), repr(sorted(getattr(script, "attributes", {}).items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
