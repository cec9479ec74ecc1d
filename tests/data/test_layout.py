"""The data packages' layering: convlens.utils.data ← convlens.data ← convlens.vision, each importing only
the layers below it, and no import cycle inside convlens.data (read from the source with ast)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import convlens

PKG = Path(convlens.__file__).parent


def _imports(path: Path) -> set[str]:
    """Absolute names of the convlens modules a file imports (relative imports resolved)."""
    module = ".".join(path.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__")
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("convlens")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            if name.startswith("convlens"):
                out.add(name)
                out |= {f"{name}.{a.name}" for a in node.names}
    return out


def _files(sub: str):
    return sorted((PKG / sub).rglob("*.py"))


def test_layers_import_only_downwards():
    for path in _files("utils"):
        bad = {m for m in _imports(path) if m.startswith(("convlens.data", "convlens.vision"))}
        assert not bad, f"{path.name} (convlens.utils.data) imports the layers above it: {bad}"
    for path in _files("data"):
        bad = {m for m in _imports(path) if m.startswith("convlens.vision")}
        assert not bad, f"{path.name} (convlens.data) imports convlens.vision: {bad}"


def test_no_import_cycle_inside_convlens_data():
    names = {p.stem for p in _files("data") if p.name != "__init__.py"}
    graph = {n: {m.split(".")[2] for m in _imports(PKG / "data" / f"{n}.py")
                 if m.startswith("convlens.data.") and m.split(".")[2] in names} - {n} for n in names}
    state: dict[str, int] = {}

    def visit(n, path):
        if state.get(n) == 1:
            raise AssertionError("import cycle in convlens.data: " + " -> ".join(path + [n]))
        if state.get(n) == 2:
            return
        state[n] = 1
        for m in sorted(graph[n]):
            visit(m, path + [n])
        state[n] = 2

    for n in sorted(graph):
        visit(n, [])
    assert "datasets" not in graph["folder"] and "folder" not in graph["download"]


def test_plain_import_reaches_utils_data_and_vision():
    code = ("import convlens; convlens.utils.data.DataLoader; convlens.utils.data.TensorDataset; "
            "convlens.vision.datasets.MNIST; convlens.vision.transforms.ToTensor; convlens.vision.utils.make_grid; "
            "convlens.save; convlens.load; import convlens.data; assert convlens.data.DataLoader is "
            "convlens.utils.data.DataLoader; assert issubclass(convlens.data.Dataset, convlens.utils.data.Dataset)")
    subprocess.run([sys.executable, "-c", code], check=True)
