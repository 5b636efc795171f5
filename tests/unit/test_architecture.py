"""The import rules that keep the tree readable: dependencies point one way.

- nothing under actors/ imports serve_app (the work does not need the HTTP edge);
- the work modules (actors/<stage>/...) import neither Ray nor a deployment shell;
- the deployment shells are imported only by the app builder, serve_app/app.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT_MODULES = {"actors.store", "actors.transcriber", "actors.llm_sender", "serve_app.gateway"}
SHELL_SIDE = DEPLOYMENT_MODULES | {"actors.metrics"}  # Ray-side modules the shells use
BUILDER = "serve_app.app"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of the file (lazy imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def refers_to(imported: set[str], modules: set[str]) -> set[str]:
    return {name for name in imported if any(name == m or name.startswith(m + ".") for m in modules)}


def test_the_rule_checker_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import ray\ndef f():\n    from serve_app.http import app\n")
    assert {"ray", "serve_app.http", "serve_app.http.app"} <= imports_of(sample)


@pytest.mark.parametrize("path", sources("actors"), ids=lambda p: str(p.relative_to(ROOT)))
def test_actors_never_import_the_http_edge(path: Path) -> None:
    assert not refers_to(imports_of(path), {"serve_app"})


WORK_MODULES = [p for p in sources("actors") if p.parent != ROOT / "actors"]


@pytest.mark.parametrize("path", WORK_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_work_modules_import_no_ray_and_no_deployment(path: Path) -> None:
    assert not refers_to(imports_of(path), {"ray"} | SHELL_SIDE)


@pytest.mark.parametrize("path", sources("actors") + sources("serve_app"), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_builder_imports_deployments(path: Path) -> None:
    if module_name(path) == BUILDER:
        return
    assert not refers_to(imports_of(path), DEPLOYMENT_MODULES)
