"""The import direction of the layout: the core imports nothing built on it, the command line sits on top.

The contracts are in pyproject.toml ([tool.importlinter]); a wrong import fails the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout, done.stdout


def test_the_contracts_would_catch_the_core_importing_the_command_line(tmp_path: Path) -> None:
    """The forbidden contract is live: a core module importing the command line breaks it."""
    config = tmp_path / "importlinter.toml"
    config.write_text(
        "[tool.importlinter]\n"
        'root_packages = ["issuance", "cli", "fakecore"]\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "core"\n'
        'type = "forbidden"\n'
        'source_modules = ["fakecore"]\n'
        'forbidden_modules = ["cli"]\n',
        encoding="utf-8",
    )
    package = tmp_path / "fakecore"
    package.mkdir()
    (package / "__init__.py").write_text("import cli.main\n", encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path[:0] = [sys.argv.pop(1), sys.argv.pop(1)];"
            " from importlinter.cli import lint_imports_command; lint_imports_command()",
            str(tmp_path),
            str(ROOT),
            "--config",
            str(config),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0, done.stdout
    assert "BROKEN" in done.stdout, done.stdout
