"""The pure packages import no I/O, clock, randomness, threads or storage library (STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PURE_PACKAGES = ["raft", "kv", "cluster", "codec", "history"]
FORBIDDEN = {"asyncio", "socket", "time", "random", "os", "threading", "rocksdict", "lmdb",
             "sqlite3", "subprocess", "selectors", "multiprocessing", "uvloop", "quorumkv.storage",
             "quorumkv.server", "quorumkv.host", "quorumkv.sim"}
SOURCE = Path(__file__).resolve().parents[1] / "src" / "quorumkv"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def is_forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def pure_files() -> list[Path]:
    return [p for pkg in PURE_PACKAGES if (SOURCE / pkg).is_dir() for p in (SOURCE / pkg).rglob("*.py")]


@pytest.mark.parametrize("path", pure_files(), ids=lambda p: str(p.relative_to(SOURCE)))
def test_pure_module_imports_no_io(path: Path) -> None:
    """A module of a pure package imports nothing that does I/O, reads a clock or draws randomness."""
    bad = [f"line {line}: {module}" for line, module in imported_modules(path) if is_forbidden(module)]
    assert not bad, f"{path} imports {bad}; pure packages take these as injected arguments"


def test_purity_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    """The import scanner flags `import time` and `from os import path`."""
    sample = tmp_path / "m.py"
    sample.write_text("import time\nfrom os import path\nimport msgpack\n")
    flagged = [m for _, m in imported_modules(sample) if is_forbidden(m)]
    assert flagged == ["time", "os"]
