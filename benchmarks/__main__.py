"""Run every benchmark module in this package with the same arguments (e.g. --applications N)."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import benchmarks


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    worst = 0
    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        entry = getattr(module, "main", None)
        if entry is None:
            continue
        print(f"== benchmarks.{info.name} {' '.join(args)}", flush=True)
        worst = max(worst, int(entry(args) or 0))
    return worst


if __name__ == "__main__":
    sys.exit(main())
