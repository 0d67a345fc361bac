"""One line per measured figure, so `python -m bench` can collect every script's results.

A bench script prints whatever a person needs to read, plus one `figure:` line per number:
`figure: <name> | <value> | <unit> | <target>`.
"""

from __future__ import annotations

import sys


def emit(name: str, value: float, unit: str, target: str = "") -> None:
    print(f"figure: {name} | {value:.4g} | {unit} | {target}")
    sys.stdout.flush()


def parse(line: str) -> tuple[str, str, str, str] | None:
    if not line.startswith("figure: "):
        return None
    parts = [p.strip() for p in line[len("figure: "):].split("|")]
    return tuple(parts) if len(parts) == 4 else None
