"""Sphinx configuration of the fraudkit docs (``make docs``).

The CLI page comes from the click group, the API pages from the numpydoc docstrings and
the notebook-parameter and tag tables from the code (``docs/_ext/fraudkit_docs.py``), so
none of them can drift from what the kit does. ``make docs`` builds with warnings as
errors.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import fraudkit  # noqa: E402

project = "fraudkit"
author = "the fraudkit authors"
copyright = "the fraudkit authors, MIT licence"
release = fraudkit.__version__
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_click",
    "fraudkit_docs",
]

# .rst first: autosummary writes its generated pages with the first suffix.
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
templates_path = ["_templates"]
# Option names such as --yes stay as typed (no en dash).
smartquotes = False

# MyST: ```{directive} fences, $math$, definition lists, heading anchors for links.
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3
# The notebooks are rendered with the outputs of the quick run they come from, never run
# again by the docs build.
nb_execution_mode = "off"

# API: one page per module, members in __all__ order, types in the description.
autosummary_generate = True
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

html_theme = "pydata_sphinx_theme"
html_title = "fraudkit"
html_static_path = ["_static"]
html_css_files = ["fraudkit.css"]
# The site is small: the whole table of contents sits in the left sidebar of every page
# (docs/_templates/fraudkit-nav.html), and the header carries no section links.
html_theme_options = {
    "navbar_center": [],
    "navigation_depth": 2,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_sidebars = {"**": ["fraudkit-nav.html"]}
