"""Fail when code imports the source roots as packages (`import shared`, `import workers`).

`shared/` and `workers/` hold the `sluice` and `sluice_workers` packages; they are never packages
themselves. (lint-imports checks the other rule: `sluice` never imports `sluice_workers`.)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOTS = ("shared", "workers", "tests", "benchmarks", "tools")
FORBIDDEN = {"shared", "workers"}


def offenders(root: Path) -> list[str]:
    found: list[str] = []
    for folder in ROOTS:
        for path in sorted((root / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    if name.split(".")[0] in FORBIDDEN:
                        found.append(f"{path.relative_to(root)}:{node.lineno}: import {name}")
    return found


def main() -> int:
    bad = offenders(Path(__file__).resolve().parent.parent)
    for line in bad:
        print(line)
    if bad:
        print("source roots are not packages: import `sluice` / `sluice_workers` instead")
        return 1
    print("import check: no module imports `shared` or `workers`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
