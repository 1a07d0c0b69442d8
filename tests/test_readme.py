"""The README's "Use from Python" examples run as written (in a fresh folder holding the repository's
``examples/``), so the documented API cannot drift from the code."""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_python_examples_run(tmp_path, capsys):
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert blocks, "README.md has no ```python example"
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace: dict = {}
        for block in blocks:
            exec(compile(block, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "metrics.capacity" in out  # the DataFrame was printed
    assert (tmp_path / "model.npz").is_file() and (tmp_path / "results.db").is_file()
    assert len(namespace["df"]) == 2 and namespace["summary"]["done"] == 2
