"""Every third-party package the project imports is declared in a requirements file.

A package that arrives only as a dependency of another one works until that other one changes; on a
fresh machine the README's install must bring everything the code imports. The imports are read from
the source (every ``import``, at module level and inside functions), so an optional import counts too.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["genmodels", "app", "scripts", "tests"]
OWN = {"genmodels", "app", "tests", "scripts", "conftest"}


def _source_files() -> list[Path]:
    files = [p for p in ROOT.glob("*.py")]
    for folder in SOURCES:
        files += (ROOT / folder).rglob("*.py")
    return sorted(set(files))


def _imported_top_names() -> dict[str, str]:
    """Top-level module name -> one file that imports it (absolute imports only)."""
    own = OWN | {p.stem for p in ROOT.glob("*.py")} | {p.stem for p in (ROOT / "tests").glob("*.py")}
    found: dict[str, str] = {}
    for path in _source_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in own:
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def _declared() -> set[str]:
    names = set()
    for req in ("requirements.txt", "requirements-nodeps.txt"):
        for line in (ROOT / req).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line:
                names.add(_normal(re.split(r"[=<>!~\[; ]", line)[0]))
    return names


def _normal(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def test_every_imported_package_is_declared():
    dists = importlib.metadata.packages_distributions()
    declared = _declared()
    missing = []
    for module, where in sorted(_imported_top_names().items()):
        providers = {_normal(d) for d in dists.get(module, [])}
        if not providers:
            missing.append(f"{module} (imported in {where}; not installed at all)")
        elif not providers & declared:
            missing.append(f"{module} (imported in {where}; comes from {sorted(providers)}, not declared)")
    assert not missing, "Imported but not in requirements.txt / requirements-nodeps.txt: " + "; ".join(missing)


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_ci_runs_the_readmes_test_command_in_a_fresh_virtual_environment():
    ci = (ROOT / ".ci" / "run").read_text()
    commands = _readme_commands()
    assert len(commands) == 2 and commands[0].endswith("streamlit run app.py")
    assert commands[1].endswith("python -m pytest")
    assert commands[1] in ci.splitlines(), "`.ci/run` must run the README's test command word for word"
    assert "-m venv" in ci and "/bin/activate" in ci, "`.ci/run` must install into a virtual environment of its own"
