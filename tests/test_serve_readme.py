"""README's "Use llmroute from other tools" Python snippets, run as written against `serve`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .support import fake_server, project_config, serve_gateway

pytestmark = pytest.mark.e2e
pytest.importorskip("openai")
pytest.importorskip("anthropic")

README = Path(__file__).parent.parent / "README.md"


def snippets() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Use llmroute from other tools"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_python_snippets_run_against_serve(tmp_path):
    found = snippets()
    assert len(found) == 2
    with fake_server("openai", reply="answer to {prompt}") as url:
        project_config(tmp_path).write_text(
            "version: 1\nproviders:\n  alpha:\n    type: openai\n"
            f"    base_url: {url}/v1\n    models:\n      fake-model: {{input: 1.0, output: 2.0}}\n"
            "routes:\n  default: [alpha]\n")
        with serve_gateway(tmp_path, env={"ALPHA_API_KEY": "k"}) as base:
            outputs = []
            for code in found:
                code = code.replace("http://127.0.0.1:4000", base)
                done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
                assert done.returncode == 0, done.stderr
                outputs.append(done.stdout)
    assert outputs == ["alpha/fake-model answer to hi\n"] * 2
