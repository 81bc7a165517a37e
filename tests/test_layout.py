"""The package's layout: rooms import only the rooms below them, and the library knows nothing of the blog study."""

import ast
from pathlib import Path

import pytest
from helpers import run_python

import tinygrad_like

PACKAGE = Path(tinygrad_like.__file__).parent

# Each room may import the rooms of lower levels only (and its own files). Files starting with "_" are helpers
# that import nothing of the package.
LEVELS = [
    {"_files", "_checks", "_progress"},
    {"engine"},
    {"ops"},
    {"numpy_protocol"},  # the Tensor API's NumPy protocol: tensors.py installs it
    {"tensors"},
    {"nn", "optim", "gradcheck", "autograd", "pytorch"},
    {"utils"},  # utils.data: datasets and loaders, on Tensors and the PyTorch face's Generator
    {"viz", "data", "check", "export"},  # check is a package: run, graph, causes, report
    {"train", "doctor"},  # doctor reads viz's training recorder
    {"__init__"},  # the public names; the study is named there (loaded lazily), never imported
    {"blog"},
    {"cli"},
    {"__main__"},
]
LIBRARY = set().union(*LEVELS[:LEVELS.index({"blog"})]) - {"__init__"}


def room_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def level_of(room: str) -> int:
    return next(i for i, rooms in enumerate(LEVELS) if room in rooms)


def package_imports(path: Path) -> set[str]:
    """The rooms of the package that ``path`` imports (relative imports resolved to their room)."""
    tree = ast.parse(path.read_text())
    depth = len(path.relative_to(PACKAGE).parts) - 1  # 0 for a top-level file, 1 inside a sub-package
    rooms = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            if node.level - 1 == depth:  # from the package's top: the module (or its names) is the room
                names = [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
                rooms |= {n if any(n in level for level in LEVELS) else "__init__" for n in names}
            elif node.level - 1 < depth:
                rooms.add(room_of(path))  # a sibling inside the same sub-package
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            rooms |= {n.split(".")[1] for n in names if n and n.startswith("tinygrad_like.")}
    return rooms


FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_to_lower_rooms(path):
    room = room_of(path)
    for other in package_imports(path) - {room}:
        assert level_of(other) < level_of(room), f"{room} imports {other}, which is not below it"


@pytest.mark.parametrize("path", [p for p in FILES if room_of(p) in LIBRARY], ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_rooms_know_nothing_of_the_blog(path):
    assert "blog" not in package_imports(path)
    assert "blog" not in path.read_text().lower(), f"{path.name} mentions the blog"


def test_the_blogs_network_uses_nothing_of_the_engine():
    assert package_imports(PACKAGE / "blog" / "network.py") <= {"_checks", "train", "blog"}
    tree = ast.parse((PACKAGE / "blog" / "network.py").read_text())
    names = {a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for a in node.names}
    assert names <= {"annotations", "Sequence", "np", "check_labels", "format_score"}


def modules_after_import() -> set[str]:
    """The modules a fresh interpreter holds after ``import tinygrad_like``."""
    run = run_python("-c", "import sys, tinygrad_like; print('\\n'.join(sys.modules))")
    assert run.returncode == 0, run.stderr
    return set(run.stdout.split())


def test_import_loads_no_study():
    modules = modules_after_import()
    assert "tinygrad_like.blog" not in modules, "the study was imported"
    assert not {m.split(".")[0] for m in modules} & {"matplotlib", "torch", "onnx", "graphviz"}


def test_import_loads_nothing_optional():
    optional = {"graphviz", "matplotlib", "torch", "onnx", "tqdm", "safetensors", "onnxruntime"}
    assert {m.split(".")[0] for m in modules_after_import()} & optional == set()
