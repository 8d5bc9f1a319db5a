"""The package's import graph has no cycle and the course layer sits on top: every import counts, at
module level or inside a function (or under ``TYPE_CHECKING``), so a layer never needs a late import to
reach the one above it, and only the course itself and the CLI import ``tryon_lab.course``."""

import ast
from pathlib import Path

import tryon_lab

PACKAGE = Path(tryon_lab.__file__).parent


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """{module: the tryon_lab modules it imports anywhere in its source}; ``from package import name``
    counts as importing the submodule ``name`` when there is one, else the package."""
    modules = _modules()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {owner(alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                if base.split(".")[0] == "tryon_lab":
                    found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else owner(base) for a in node.names}
        graph[module] = found - {None, module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_finder_sees_a_cycle_through_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_function_level_imports_are_edges():
    graph = import_graph()
    # export.bundle imports the pipeline loader inside export_bundle only
    assert "tryon_lab.pipelines.loading" in graph["tryon_lab.export.bundle"]


def test_tryon_lab_has_no_import_cycle():
    assert cycles(import_graph()) == []


def course_importers(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """{module outside ``tryon_lab.course`` and the CLI: the course modules it imports}."""
    def inside(module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    found = {}
    for module, imported in graph.items():
        if inside(module, "tryon_lab.course") or inside(module, "tryon_lab.cli"):
            continue
        course = {name for name in imported if inside(name, "tryon_lab.course")}
        if course:
            found[module] = course
    return found


def test_the_course_check_sees_an_importer_from_below():
    graph = {"tryon_lab.pipelines.x": {"tryon_lab.course.dtc.film"}, "tryon_lab.cli.main": {"tryon_lab.course"},
             "tryon_lab.course.runner": {"tryon_lab.course.exercises"}, "tryon_lab.coursework": set()}
    assert course_importers(graph) == {"tryon_lab.pipelines.x": {"tryon_lab.course.dtc.film"}}


def test_only_the_course_and_the_cli_import_the_course():
    graph = import_graph()
    assert "tryon_lab.course.runner" in graph, "the course layer is where the graph looks for it"
    assert course_importers(graph) == {}
