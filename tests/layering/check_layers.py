#!/usr/bin/env python3
"""Fails if a layer includes a layer above it (DESIGN.md: dependencies point down the layer list only).

Reads every source and header of each layer (src/<layer>, include/dojo/<layer>) and its #include "dojo/<other>/..."
lines; prints each include that reaches up, with file and line, and exits 1 if there is any. CTest runs it.
Usage: check_layers.py REPOSITORY_ROOT
"""
import pathlib
import re
import sys

# The order of docs/architecture.md and DESIGN.md: a layer may include itself and the layers before it.
LAYERS = ["util", "numerics", "geometry", "ir", "frontend", "autodiff", "machine", "compiler", "data", "runtime", "sim", "proof", "service"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"dojo/([a-z_]+)/')


def main(root: pathlib.Path) -> int:
    violations = []
    checked = 0
    for rank, layer in enumerate(LAYERS):
        allowed = set(LAYERS[: rank + 1])
        for base in (root / "src" / layer, root / "include" / "dojo" / layer):
            for path in sorted(base.rglob("*")):
                if path.suffix not in {".h", ".cpp", ".inc"}:
                    continue
                checked += 1
                for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    match = INCLUDE.match(line)
                    if match and match.group(1) not in allowed:
                        violations.append(f"{path.relative_to(root)}:{number}: layer '{layer}' includes "
                                          f"'{match.group(1)}', a layer above it")
    for layer in LAYERS:  # a layer missing from the list would go unchecked
        if not (root / "src" / layer).is_dir():
            violations.append(f"src/{layer}: no such layer (update LAYERS with the design)")
    for path in sorted((root / "src").iterdir()):
        if path.is_dir() and path.name not in LAYERS:
            violations.append(f"src/{path.name}: a layer that check_layers.py does not know; add it to LAYERS")
    print("\n".join(violations) if violations else f"layering: {checked} files, every include points down")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1])))
