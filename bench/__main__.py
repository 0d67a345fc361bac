"""The benchmark suite: `python -m bench [--quick]` runs every bench script and prints one
table of every figure they report.

Each script runs in its own process with bytecode caching on (as after a normal `pip install`;
PYTHONDONTWRITEBYTECODE is dropped) after `compileall`, so start-up figures are what users see.
`--quick` runs small sizes so CI can keep the suite from rotting; it asserts nothing about time.
"""

from __future__ import annotations

import argparse
import compileall
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import parse  # noqa: E402

SCRIPTS = ("startup", "e2e", "route", "route_eval", "difficulty", "budget", "report", "batch", "local",
           "tokens", "serve")


def run_script(name: str, quick: bool, env: dict) -> tuple[list[tuple[str, str, str, str]], str]:
    path = ROOT / "bench" / f"{name}.py"
    if not path.exists():
        return [], "missing"
    args = [sys.executable, str(path)] + (["--quick"] if quick else [])
    started = time.perf_counter()
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    figures = [f for f in (parse(line) for line in result.stdout.splitlines()) if f]
    if result.returncode != 0:
        return figures, f"failed (exit {result.returncode}): {result.stderr.strip().splitlines()[-1:] or ''}"
    return figures, f"ok in {elapsed:.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke mode)")
    parser.add_argument("only", nargs="*", help="run only these scripts")
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    compileall.compile_dir(str(ROOT / "llmroute"), quiet=1)
    rows, failures = [], []
    for name in args.only or SCRIPTS:
        figures, status = run_script(name, args.quick, env)
        print(f"{name:<11} {status}", file=sys.stderr)
        if not status.startswith("ok"):
            failures.append(name)
        rows += [(name, *figure) for figure in figures]
    from tabulate import tabulate

    print(tabulate(rows, headers=["bench", "figure", "value", "unit", "target"]))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
