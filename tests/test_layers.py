"""Each module imports only from lower layers (STYLE.md §3)."""

import ast
from pathlib import Path

import factrecall

LAYERS = {
    "base": 0,
    "errors": 0,
    "progress": 0,
    "embeddings": 1,
    "task": 1,
    "bounds": 1,
    "fits": 1,
    "provenance": 1,
    "memories": 2,
    "transformer": 2,
    "search": 1,
    "scaling": 1.5,
    "stages": 1,
    "facts": 1,
    "constructions": 3,
    "engine": 3,
    "capacity": 4,
    "dynamics": 4,
    "recall": 4,
    "transformer_capacity": 4.5,
    "constructed": 4.5,
    "planner": 4.5,
    "attribution": 4.5,
    "queries": 4.5,
    "config": 5,
    "store": 5,
    "sweeps": 5.5,
    "plots": 6,
    "reproduce": 7,
    "report": 6.5,
    "cli": 8,
}
NO_JAX = {"bounds", "fits", "plots", "errors", "progress", "config", "store", "search", "stages", "facts"}
NO_JAX |= {"scaling"}  # issue 7: the planner's scaling laws


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module == "factrecall":
                names |= {f"factrecall.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def test_modules_import_only_lower_layers():
    root = Path(factrecall.__file__).parent
    for path in sorted(root.glob("*.py")):
        name = path.stem
        if name == "__init__":
            continue
        assert name in LAYERS, f"{name}.py has no layer in tests/test_layers.py"
        for imported in _imports(path):
            if imported.startswith("factrecall."):
                other = imported.split(".")[1]
                assert LAYERS[other] < LAYERS[name], (
                    f"{name} (L{LAYERS[name]}) imports {other} (L{LAYERS[other]})"
                )
            if name in NO_JAX:
                assert not imported.startswith("jax"), f"{name} must not import JAX"
