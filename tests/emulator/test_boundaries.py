"""The emulator stays an independent implementation: no imports from gcdial's client side."""

import ast
from pathlib import Path

import gcdial.emulator

ALLOWED = {"gcdial._shared", "gcdial._uvicorn_thread"}


def test_emulator_imports_nothing_from_the_client_side() -> None:
    package = Path(gcdial.emulator.__file__).parent
    offenders = []
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                inside = name == "gcdial" or name.startswith("gcdial.")
                if inside and name not in ALLOWED and not name.startswith("gcdial.emulator"):
                    offenders.append(f"{source.name}: {name}")
    assert offenders == []
