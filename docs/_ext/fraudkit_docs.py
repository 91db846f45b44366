"""Docs generated from the code at build time, so they cannot drift from it.

- ``{fraudkit-notebook-parameters} NAME``: the parameters of notebook NAME, read from its
  ``parameters`` cell by :func:`fraudkit.runner.parameters.notebook_parameters`, with the
  quick run's sizes (:data:`fraudkit.runner.pipeline.QUICK_PARAMETERS`) beside them.
- ``{fraudkit-tags}``: every tag name in :mod:`fraudkit.core.tags`, with its comment.
- Before reading, the five notebooks executed by ``fraudkit pipeline --quick`` in a
  temporary ``FRAUDKIT_HOME``, copied to ``reference/quick-run/`` for myst-nb to render
  (see :func:`render_quick_run`).
- At the end of reading, a warning (an error under ``-W``) for a notebook without its
  parameter table and for a module of the package the API reference leaves out.
"""

from __future__ import annotations

import ast
import hashlib
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

import fraudkit
from fraudkit.runner.parameters import NOTEBOOKS, notebook_parameters
from fraudkit.runner.pipeline import QUICK_PARAMETERS

logger = logging.getLogger(__name__)

# Entry points and the CLI have their own page (reference/cli); importing a __main__
# module would run it.
UNDOCUMENTED_MODULES = ("fraudkit.cli", "fraudkit.__main__", "fraudkit.dashboard.__main__")


def _cell(content: str | nodes.Node) -> nodes.entry:
    entry = nodes.entry()
    if isinstance(content, nodes.Node):
        entry += nodes.paragraph("", "", content)
    else:
        entry += nodes.paragraph(text=content)
    return entry


def _table(headers: Sequence[str], rows: Iterable[Sequence[str | nodes.Node]]) -> nodes.table:
    table = nodes.table(classes=["fraudkit-generated"])
    group = nodes.tgroup(cols=len(headers))
    table += group
    for _ in headers:
        group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    head += nodes.row("", *(_cell(h) for h in headers))
    group += head
    body = nodes.tbody()
    for row in rows:
        body += nodes.row("", *(_cell(c) for c in row))
    group += body
    return table


def _literal(text: str | None) -> nodes.Node | str:
    return nodes.literal(text=text) if text else ""


class NotebookParameters(SphinxDirective):
    """The table of one notebook's parameters."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        if name not in NOTEBOOKS:
            raise self.error(f"unknown notebook {name!r}; use one of {', '.join(NOTEBOOKS)}")
        self.env.note_dependency(fraudkit.runner.parameters.notebook_path(name))
        documented = self.env.domaindata.setdefault("fraudkit_notebooks", {})
        documented[name] = self.env.docname
        quick = QUICK_PARAMETERS.get(name, {})
        rows = [
            (
                _literal(parameter),
                _literal(spec["type"]),
                _literal(spec["default"]),
                _literal(repr(quick[parameter])) if parameter in quick else "",
                spec["help"],
            )
            for parameter, spec in notebook_parameters(name).items()
        ]
        headers = ("parameter", "type", "default", "smallest sensible (quick run)", "meaning")
        intro = nodes.paragraph(
            "",
            "",
            nodes.literal(text=NOTEBOOKS[name]),
            nodes.Text(" — "),
            nodes.literal(text=f"fraudkit run {name} -p NAME VALUE"),
        )
        return [intro, _table(headers, rows)]


_SECTION = re.compile(r"#\s*-+\s*(?P<title>.*?)\s*-+\s*$")


def tag_rows() -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Read :mod:`fraudkit.core.tags`: ``[(section, [(constant, value, comment)])]``."""
    from fraudkit.core import tags

    lines = Path(tags.__file__).read_text(encoding="utf-8").splitlines()
    sections: list[tuple[str, list[tuple[str, str, str]]]] = []
    last_assignment_end = -1  # line number of the end of the previous assignment
    under_block_comment = False  # the previous assignment was described by a comment above it
    for node in ast.parse("\n".join(lines)).body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            doc = (ast.get_docstring(node) or "").split("\n")[0]
            value = getattr(tags, node.name)("<context>")
            sections[-1][1].append((f"{node.name}(context)", value, doc))
            continue
        if not isinstance(node, ast.Assign) or not isinstance(node.targets[0], ast.Name):
            continue
        name = node.targets[0].id
        if name in ("__all__", "TAG_PREFIX"):
            continue
        above = []
        row = node.lineno - 2
        while row >= 0 and lines[row].lstrip().startswith("#"):
            above.insert(0, lines[row].strip())
            row -= 1
        for comment in above:
            match = _SECTION.match(comment)
            if match:
                sections.append((match.group(1), []))
        pending = [c.lstrip("#:").strip() for c in above if not _SECTION.match(c)]
        line = lines[node.lineno - 1]
        trailing = line.split("#", 1)[1].strip() if "#" in line[node.end_col_offset :] else ""
        if trailing:
            comment = trailing
        elif pending:
            comment = " ".join(pending)
        elif under_block_comment and last_assignment_end == node.lineno - 1:
            comment = "(as above)"  # one of a block of names under one comment
        else:
            comment = ""
        sections[-1][1].append((name, getattr(tags, name), comment.replace("``", "")))
        under_block_comment = not trailing and (bool(pending) or comment == "(as above)")
        last_assignment_end = node.end_lineno or node.lineno
    return sections


class Tags(SphinxDirective):
    """Every tag name the kit writes or reads, grouped as in ``fraudkit/core/tags.py``."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from fraudkit.core import tags

        self.env.note_dependency(tags.__file__)
        result: list[nodes.Node] = []
        for title, rows in tag_rows():
            result.append(nodes.rubric(text=title))
            cells = [(_literal(value), _literal(name), comment) for name, value, comment in rows]
            result.append(_table(("tag", "constant", "what it holds"), cells))
        return result


def package_modules() -> list[str]:
    """Every module of fraudkit the API reference should document."""
    names = []
    for info in pkgutil.walk_packages(fraudkit.__path__, prefix="fraudkit."):
        if any(info.name == u or info.name.startswith(u + ".") for u in UNDOCUMENTED_MODULES):
            continue
        if info.ispkg:
            continue
        names.append(info.name)
    return sorted(names)


def check_coverage(app: Sphinx, env: BuildEnvironment) -> None:
    """Warn about notebooks without a parameter table and modules the API leaves out."""
    documented = env.domaindata.get("fraudkit_notebooks", {})
    for name in NOTEBOOKS:
        if name not in documented:
            logger.warning("notebook %r has no {fraudkit-notebook-parameters} table", name)
    modules = set(env.get_domain("py").modules)
    for name in package_modules():
        if name not in modules:
            logger.warning("module %s is missing from docs/reference/api.md", name)


def purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    documented = env.domaindata.get("fraudkit_notebooks", {})
    for name in [n for n, doc in documented.items() if doc == docname]:
        del documented[name]


QUICK_RUN_DIR = "reference/quick-run"  # under the docs source folder; not committed
# FRAUDKIT_DOCS_QUICK_RUN=1, the default of `make docs` and so of CI, renders the notebooks:
# the quick pipeline adds one to six minutes to a build on two cores (cached afterwards).
# `make docs DOCS_QUICK_RUN=0` leaves them out, for a quick look at a page being written.
QUICK_RUN_ENV = "FRAUDKIT_DOCS_QUICK_RUN"


def quick_run_key() -> str:
    """A digest of what the quick run's notebooks depend on: the notebooks and the package."""
    digest = hashlib.sha1()
    package = Path(fraudkit.__file__).parent
    notebooks = fraudkit.runner.parameters.notebook_path("training").parent
    for path in sorted([*package.rglob("*.py"), *notebooks.glob("*.ipynb")]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def execute_quick_run(target: Path) -> None:
    """Run ``fraudkit pipeline --quick`` in a fresh home; copy its notebooks to ``target``."""
    with tempfile.TemporaryDirectory(prefix="fraudkit-docs-") as home:
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        env.update({"FRAUDKIT_HOME": home, "OMP_WAIT_POLICY": "PASSIVE"})
        command = [sys.executable, "-m", "fraudkit", "pipeline", "--quick", "--quiet"]
        started = time.monotonic()
        done = subprocess.run(command, cwd=home, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
            logger.warning("fraudkit pipeline --quick failed (exit %s):\n%s", done.returncode, tail)
        target.mkdir(parents=True, exist_ok=True)
        for run_dir in sorted((Path(home) / "reports" / "runs").glob("*/notebook.ipynb")):
            run_name = run_dir.parent.name
            for name, file_name in NOTEBOOKS.items():
                if run_name.startswith(f"{name}-"):
                    shutil.copyfile(run_dir, target / file_name)
        logger.info("quick run: %.0f s", time.monotonic() - started)


def render_quick_run(app: Sphinx) -> None:
    """Put the quick run's executed notebooks where the build reads them.

    They are cached under ``_build/quick-run/<digest>``: a build reruns the pipeline only
    when a notebook or a module of the package changed.
    """
    pages = Path(app.srcdir) / QUICK_RUN_DIR
    shutil.rmtree(pages, ignore_errors=True)
    pages.mkdir(parents=True)
    if os.environ.get(QUICK_RUN_ENV, "1") != "1":
        (pages / "not-rendered.md").write_text(
            "# Not rendered in this build\n\n"
            "This site was built with `make docs DOCS_QUICK_RUN=0`, which leaves the "
            "rendered notebooks out. A plain `make docs` runs the quick pipeline and "
            "renders them here.\n"
        )
        return
    cache = Path(app.srcdir) / "_build" / "quick-run" / quick_run_key()
    if not any(cache.glob("*.ipynb")):
        shutil.rmtree(cache.parent, ignore_errors=True)
        logger.info("running fraudkit pipeline --quick for the rendered notebooks ...")
        execute_quick_run(cache)
    for notebook in sorted(cache.glob("*.ipynb")):
        shutil.copyfile(notebook, pages / notebook.name)


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("builder-inited", render_quick_run)
    app.add_directive("fraudkit-notebook-parameters", NotebookParameters)
    app.add_directive("fraudkit-tags", Tags)
    app.connect("env-purge-doc", purge)
    app.connect("env-check-consistency", check_coverage)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
