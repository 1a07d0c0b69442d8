"""The package is layered: a sub-package imports only from lower ones, a module only from lower modules.

Order of the sub-packages (README "Layout"): core → memories → recall → dynamics → facts → editing →
experiments → cli.
Inside a sub-package, :data:`MODULES` gives each module's rank; a module imports only modules of lower rank
(same sub-package) or of lower sub-packages. Size limits (≤ 400 lines a module, an opening docstring that
says what it owns) are checked here too.
"""

import ast
from pathlib import Path

import factrecall

ROOT = Path(factrecall.__file__).parent
PACKAGES = ("core", "memories", "recall", "dynamics", "facts", "editing", "experiments", "cli")
# rank of each module inside its sub-package (a module imports only lower ranks of its own sub-package)
MODULES = {
    "core": {
        "base": 0,
        "errors": 0,
        "devices": 0,
        "cache": 1,
        "fields": 0,
        "io": 1,
        "progress": 0,
        "provenance": 1,
        "bounds": 1,
        "paper": 0,
        "fits": 1,
        "search": 1,
        "engine": 2,
        "runs": 3,
        "queue": 4,
    },
    "memories": {
        "targets": 0,
        "embeddings": 0,
        "models": 1,
        "constructions": 2,
        "spec": 2,
        "trials": 3,
        "lockstep": 4,
        "queue": 4,
        "capacity": 5,
    },
    "recall": {
        "task": 0,
        "transformer": 0,
        "training": 1,
        "constructions": 2,
        "padded": 2,
        "capacity": 3,
        "paper_procedure": 4,
        "tradeoff": 3,
        "construction_search": 3,
        "attribution": 2,
        "models": 2,
    },
    "dynamics": {"stages": 0, "spec": 0, "simplified": 0, "trajectory": 1},
    "facts": {"table": 0, "scaling": 0, "planner": 1, "queries": 1},
    "editing": {"edits": 0, "sites": 1, "metrics": 1, "methods": 2, "run": 3, "study": 4},
    "experiments": {
        "config": 0,
        "store": 0,
        "plots": 0,
        "plots_transformer": 1,
        "specs": 1,
        "sweeps": 2,
        "report": 2,
        "figures": 3,
        "reproduce": 4,
    },
    "cli": {"common": 0},
}
NO_JAX = {
    "core.bounds",
    "core.paper",
    "core.fits",
    "core.errors",
    "core.progress",
    "core.io",
    "core.devices",
    "core.fields",
    "core.search",
    "dynamics.stages",
    "dynamics.spec",
    "facts.table",
    "facts.scaling",
    "experiments.config",
    "experiments.store",
    "experiments.plots",
    "experiments.report",
}
MAX_LINES = 400


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module.startswith("factrecall"):
                names |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def _where(path: Path) -> tuple[str, str]:
    """(sub-package, module) of a file; figure modules count as the sub-package's ``figures`` module."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    if len(parts) == 3 and parts[1] == "figures":
        return parts[0], "figures"
    return parts[0], parts[1] if len(parts) > 1 else "__init__"


def _rank(package: str, module: str) -> float:
    if module == "__init__":
        return 100  # a sub-package's __init__ may re-export its modules
    return MODULES[package].get(module, 50)  # cli command modules sit above cli.common


def _sources() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if p.parent != ROOT)


def test_every_module_is_in_a_subpackage_and_has_a_rank():
    top = sorted(p.name for p in ROOT.glob("*.py"))
    assert top == ["__init__.py", "api.py"], f"modules outside the sub-packages: {top}"
    for path in _sources():
        package, module = _where(path)
        assert package in PACKAGES, f"{path}: unknown sub-package {package}"
        if package != "cli" and module not in ("__init__",):
            assert module in MODULES[package], f"{package}/{module}.py has no rank in tests/test_layers.py"


def test_modules_import_only_lower_layers():
    for path in _sources():
        package, module = _where(path)
        for imported in _imports(path):
            if not imported.startswith("factrecall."):
                if f"{package}.{module}" in NO_JAX:
                    assert not imported.startswith("jax"), f"{package}.{module} must not import JAX"
                continue
            parts = imported.split(".")
            other_pkg = parts[1]
            if other_pkg in ("api",) or other_pkg not in PACKAGES:
                assert other_pkg in ("api", "use_cpu_cores", "__version__"), f"{path} imports {imported}"
                continue
            if len(parts) < 3 or other_pkg != package:
                assert PACKAGES.index(other_pkg) <= PACKAGES.index(package), (
                    f"{package}.{module} imports {imported} (sub-package {other_pkg} is above {package})"
                )
                continue
            other = parts[2]
            if other == module or (other == "figures" and module == "figures"):
                continue
            if other not in MODULES.get(package, {}) and package != "cli":
                continue  # a name imported from the sub-package's __init__ (handled above)
            assert _rank(package, other) < _rank(package, module), (
                f"{package}.{module} (rank {_rank(package, module)}) imports {package}.{other} "
                f"(rank {_rank(package, other)})"
            )


MAX_FUNCTION_LINES = 60
LONG_ALLOWED = {("core/engine.py", "train")}  # the compiled training loop, kept on one screen on purpose


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function without its docstring."""
    n = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant):
        n -= first.end_lineno - first.lineno + 1
    return n


def test_modules_are_small_and_say_what_they_own():
    for path in sorted(ROOT.rglob("*.py")):
        name = str(path.relative_to(ROOT))
        text = path.read_text()
        n = len(text.splitlines())
        assert n <= MAX_LINES, f"{name} has {n} lines (at most {MAX_LINES})"
        tree = ast.parse(text)
        doc = ast.get_docstring(tree)
        assert doc and len(doc) > 20, f"{name} has no opening docstring saying what it owns"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and (name, node.name) not in LONG_ALLOWED
            ):
                lines = _code_lines(node)
                assert lines <= MAX_FUNCTION_LINES, f"{name}: {node.name} has {lines} lines of code"
