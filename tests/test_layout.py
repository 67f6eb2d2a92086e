"""The package layout is an architecture: core knows no paper, a paper's package knows no other paper and not the
study. Checked on the source's import statements, so a violation fails here before it becomes a cycle."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pairlib"
LAYERS = {"core": 0, "deformer": 1, "fastbert": 1, "dipair": 1, "study": 2, "serve": 2, "apply": 2}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


def imported_packages(source: str, package: tuple[str, ...]) -> set[str]:
    """The pairlib sub-packages a module imports (absolute or relative, at the top or inside a function);
    `package` is the module's own package below pairlib, e.g. ("deformer",)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's own package
                base = package[: len(package) + 1 - node.level]
                name = ".".join(("pairlib", *base, *(node.module.split(".") if node.module else ())))
            else:
                name = node.module or ""
            names = [name] if name != "pairlib" else [f"pairlib.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n.split(".")[1] for n in names if n.startswith("pairlib.")}
    return found


def test_every_module_sits_in_a_known_layer():
    assert {p.relative_to(PACKAGE).parts[0] for p in _modules()} == set(LAYERS)
    assert {p.name for p in PACKAGE.glob("*.py")} == {"__init__.py", "__main__.py"}, \
        "a new module belongs in core/, a paper's package or study/ (see pairlib/README.md)"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_lower_layer_or_another_paper(path):
    parts = path.relative_to(PACKAGE).parts
    own = parts[0]
    for other in imported_packages(path.read_text(), parts[:-1]) - {own}:
        assert LAYERS[other] < LAYERS[own], f"pairlib/{path.relative_to(PACKAGE)} imports pairlib.{other}: " \
                                            "core must not import a paper or the study, nor a paper another paper"


def test_the_checker_sees_upward_sideways_and_relative_imports():
    source = "from pairlib.study import report\nfrom ..dipair import modeling\nfrom . import inputs\n" \
             "import pairlib.core.data\ndef f():\n    from pairlib import fastbert\n"
    assert imported_packages(source, ("deformer",)) == {"study", "dipair", "deformer", "core", "fastbert"}
