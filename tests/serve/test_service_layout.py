"""The service stays split (issue 16): ``DialService`` only wires its parts, and no class of the
service's modules grows back into a god object (the limits of ``tests/campaign``'s layout test)."""

import ast
from pathlib import Path

import pytest

import gcdial.serve

MAX_LINES = 400
MAX_METHODS = 25
SERVICE_MODULES = (
    "service",
    "service_core",
    "dials",
    "following",
    "dial_recovery",
    "webhook_delivery",
)


def _classes(module: str) -> dict[str, ast.ClassDef]:
    path = Path(gcdial.serve.__file__).parent / f"{module}.py"
    tree = ast.parse(path.read_text())
    return {node.name: node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}


def _methods(node: ast.ClassDef) -> list[str]:
    return [n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


@pytest.mark.parametrize("module", SERVICE_MODULES)
def test_no_class_of_the_service_is_over_the_limit(module: str) -> None:
    classes = _classes(module)
    assert classes, f"{module} defines no class"
    for name, node in classes.items():
        assert node.end_lineno is not None
        lines = node.end_lineno - node.lineno + 1
        assert lines <= MAX_LINES, f"{name}: {lines} lines"
        assert len(_methods(node)) <= MAX_METHODS, f"{name}: {len(_methods(node))} methods"


def test_dial_service_only_wires_its_parts() -> None:
    service = _classes("service")["DialService"]
    assert _methods(service) == ["__init__", "start", "stop"]
