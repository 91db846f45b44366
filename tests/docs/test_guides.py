"""Docs that cannot rot: every bash and Python block of the guides runs, in page order.

Each page (``docs/getting-started.md`` and ``docs/guides/*.md``) runs in a fresh working
folder that is also its ``FRAUDKIT_HOME``, so it starts from an empty tracking store as a
new user in an empty folder does:

* a ```` ```bash ```` block runs with ``bash -euo pipefail`` in that folder, with the
  virtualenv's ``bin`` first on ``PATH`` and ``MLFLOW_TRACKING_URI`` unset;
* a ```` ```python ```` block runs with ``exec`` in one namespace per page, in the same
  folder and environment, so later blocks see what earlier ones defined.

A block opts out only with the MyST directive form and the class ``no-test``::

    ```{code-block} bash
    :class: no-test

    make demo
    ```

for what cannot run here: installation into the shared environment, long-running
servers, cluster addresses. Fences tagged ``sh``, ``shell``, ``console``, ``py`` or
``pycon`` are refused, so that no command slips past the test under another name.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = [DOCS / "getting-started.md", *sorted((DOCS / "guides").glob("*.md"))]
NO_TEST = "no-test"
RUN_LANGUAGES = {"bash", "python"}
# Tags that would look runnable to a reader but escape the test: use bash or python.
REFUSED_LANGUAGES = {"sh", "shell", "console", "py", "pycon", "python3", "ipython", "zsh"}
_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$")
_DIRECTIVE = re.compile(r"^\{(?:code-block|code|sourcecode)\}\s*(?P<language>\S*)")
_OPTION = re.compile(r"^:(?P<name>[\w-]+):\s*(?P<value>.*)$")
# Environment a user's shell would not carry into an empty folder.
_CLEARED_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "FRAUDKIT_PIPELINE_ID",
    "FRAUDKIT_NOTEBOOK",
    "DASK_SCHEDULER_ADDRESS",
)


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    skipped: bool

    def where(self) -> str:
        return f"{self.page}:{self.line} ({self.language})"


def parse_blocks(path: Path, root: Path = DOCS) -> list[Block]:
    """Return the fenced code blocks of a MyST page in order (nested fences included once).

    Raises
    ------
    ValueError
        A fence is not closed, a runnable-looking language is not bash or python, or an
        option other than ``:class: no-test`` marks a block skipped.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    name = path.relative_to(root).as_posix()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i].strip())
        if not match:
            i += 1
            continue
        fence, info, start = match["fence"], match["info"].strip(), i
        body: list[str] = []
        i += 1
        while i < len(lines) and not (
            lines[i].strip().startswith(fence) and not lines[i].strip()[len(fence) :].strip()
        ):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"{name}:{start + 1}: fence {fence} is never closed")
        i += 1
        blocks.extend(_block(name, start + 1, info, body))
    return blocks


def _block(page: str, line: int, info: str, body: list[str]) -> list[Block]:
    directive = _DIRECTIVE.match(info)
    language = (directive["language"] if directive else info.split()[0] if info else "").lower()
    options: dict[str, str] = {}
    if directive:
        while body and _OPTION.match(body[0].strip()):
            option = _OPTION.match(body.pop(0).strip())
            assert option is not None
            options[option["name"]] = option["value"].strip()
        while body and not body[0].strip():
            body.pop(0)
    if language in REFUSED_LANGUAGES:
        raise ValueError(
            f"{page}:{line}: a ```{language} block would escape the docs test; "
            "tag it bash or python (or mark it no-test)"
        )
    if info.startswith("{") and not directive:
        return []  # another directive (toctree, note...); its content is not code
    skipped = NO_TEST in options.get("class", "").split()
    if language not in RUN_LANGUAGES:
        if skipped:
            raise ValueError(f"{page}:{line}: only bash and python blocks can be no-test")
        return []
    return [Block(page, line, language, textwrap.dedent("\n".join(body)) + "\n", skipped)]


def _environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED_ENV}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(Path(venv_bin).parent)
    env["FRAUDKIT_HOME"] = str(home)
    env["MPLBACKEND"] = "Agg"
    # As the Makefile exports: OpenMP threads that spin-wait slow a shared machine down.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def _run_bash(block: Block, home: Path, env: dict[str, str]) -> None:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{block.where()} exited {done.returncode}\n--- block\n{block.code}"
            f"--- stdout (tail)\n{done.stdout[-4000:]}\n--- stderr (tail)\n{done.stderr[-4000:]}",
            pytrace=False,
        )


def _run_python(block: Block, namespace: dict) -> None:
    code = compile(block.code, f"<{block.where()}>", "exec")
    try:
        exec(code, namespace)
    except Exception as exc:
        pytest.fail(
            f"{block.where()} raised {type(exc).__name__}: {exc}\n--- block\n{block.code}",
            pytrace=False,
        )


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(DOCS).as_posix() for p in PAGES])
@pytest.mark.timeout(1800)
def test_page_blocks_run(
    page: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    _template_db: Path,
) -> None:
    blocks = parse_blocks(page)
    assert any(not b.skipped for b in blocks), f"{page.name} has no block that runs"
    home = tmp_path / "work"
    home.mkdir()
    # MLflow's empty schema, made once per session: the page's first command would
    # otherwise spend its first seconds creating the same tables.
    shutil.copy(_template_db, home / "mlflow.db")
    env = _environment(home)
    for name in _CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    for name in ("FRAUDKIT_HOME", "MPLBACKEND", "OMP_WAIT_POLICY", "PATH"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.chdir(home)
    namespace: dict = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for block in blocks:
        if block.skipped:
            continue
        if block.language == "bash":
            _run_bash(block, home, env)
        else:
            _run_python(block, namespace)


def test_no_test_marker_is_rare() -> None:
    """Opting out is for what cannot run here; most blocks of every page run."""
    for page in PAGES:
        blocks = parse_blocks(page)
        skipped = [b.where() for b in blocks if b.skipped]
        assert len(skipped) <= max(3, len(blocks) // 3), f"too many no-test blocks: {skipped}"


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(DOCS).as_posix() for p in PAGES])
def test_page_has_one_title(page: Path) -> None:
    """The site's navigation takes each page's single top-level heading as its title."""
    titles, fence = [], None
    for line in page.read_text(encoding="utf-8").splitlines():
        match = _FENCE.match(line.strip())
        if match and (fence is None or match["fence"] == fence):
            fence = None if fence else match["fence"]
        elif fence is None and line.startswith("# "):
            titles.append(line)
    assert len(titles) == 1 and page.read_text().startswith("# "), titles


def test_parser_reads_fences_and_the_opt_out(tmp_path: Path) -> None:
    probe = tmp_path / "probe.md"
    probe.write_text(
        textwrap.dedent(
            """\
            # Probe

            ```bash
            echo one
            ```

            ```{code-block} bash
            :class: no-test

            make demo
            ```

            ````markdown
            ```python
            print("inside a markdown example: not a block of this page")
            ```
            ````

            ```text
            output
            ```

            ```python
            x = 1
            ```
            """
        )
    )
    blocks = parse_blocks(probe, tmp_path)
    assert [(b.language, b.skipped, b.code.strip()) for b in blocks] == [
        ("bash", False, "echo one"),
        ("bash", True, "make demo"),
        ("python", False, "x = 1"),
    ]
    probe.write_text("```shell\nls\n```\n")
    with pytest.raises(ValueError, match="would escape the docs test"):
        parse_blocks(probe, tmp_path)
