"""The library's floor plan: no import circles, the hall never imports a wing, and no lesson opens a wing."""

import ast
import json
from pathlib import Path

import pytest

from repo_files import ROOT, notebooks

WINGS = ("course_lib.datafiles", "course_lib.tinymodel")  # the factory that wrote data/; see course_lib/README.md


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules of `known` that the code in `tree` (module `name`) imports, at its top or inside functions."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from package import submodule` imports the submodule; `from module import name` the module
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` where only a.b is a module of ours
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules it imports, for every .py file of the package folder `root` (e.g. course_lib/)."""
    files = {module_name(p, root.parent): p for p in sorted(root.rglob("*.py"))}
    known = set(files)
    return {name: imported_modules(ast.parse(path.read_text(encoding="utf-8")), name, path.name == "__init__.py", known)
            for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import each other in a circle (strongly connected components above one)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def in_wing(module: str) -> bool:
    return any(module == wing or module.startswith(wing + ".") for wing in WINGS)


def hall_to_wing(graph: dict[str, set[str]]) -> list[str]:
    """`hall -> wing` for each import of a wing module by a module outside the wings."""
    return [f"{a} -> {b}" for a in sorted(graph) if not in_wing(a) for b in sorted(graph[a]) if in_wing(b)]


def write_package(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / "course_lib" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "course_lib"


def test_the_checks_find_a_circle_and_a_hall_module_that_imports_a_wing(tmp_path):
    package = write_package(tmp_path, {
        "__init__.py": "",
        "a.py": "from course_lib import b\n",
        "b.py": "def f():\n    from course_lib.a import g\n",  # an import inside a function counts too
        "c.py": "from course_lib.datafiles.tickets import make_ticket\n",
        "datafiles/__init__.py": "",
        "datafiles/tickets.py": "from course_lib import c\n",  # a wing may import the hall
        "memory/__init__.py": "from course_lib.memory.shapes import X\n",
        "memory/shapes.py": "from . import estimate\n",
        "memory/estimate.py": "X = 1\n",
    })
    graph = import_graph(package)
    assert graph["course_lib.memory.shapes"] == {"course_lib.memory.estimate"}  # relative imports resolved
    assert graph["course_lib.memory"] == {"course_lib.memory.shapes"}
    assert cycles(graph) == [["course_lib.a", "course_lib.b"], ["course_lib.c", "course_lib.datafiles.tickets"]]
    assert hall_to_wing(graph) == ["course_lib.c -> course_lib.datafiles.tickets"]


def test_course_lib_has_no_import_circles():
    found = cycles(import_graph(ROOT / "course_lib"))
    assert found == [], f"modules that import each other in a circle: {found}. Move what both need below both."


def test_no_hall_module_imports_a_wing():
    found = hall_to_wing(import_graph(ROOT / "course_lib"))
    assert found == [], (f"hall modules import the factory wings: {found}. Move what the hall needs out of the wing, "
                         "into the hall (see course_lib/README.md).")


def notebook_imports(path: Path) -> set[str]:
    names = set()
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        lines = "".join(cell["source"]).splitlines()
        source = "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))  # no magics
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module:
                names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
    return names


@pytest.mark.parametrize("notebook", notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_lesson_opens_a_wing(notebook):
    opened = sorted(name for name in notebook_imports(notebook) if in_wing(name))
    assert opened == [], f"{notebook.relative_to(ROOT)} imports {opened}: lessons use the hall (course_lib/README.md)"
