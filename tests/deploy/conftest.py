"""Shared fixtures for the deployment checks.

The tool venvs are created by scripts/setup-deploy-checks.sh (``make test``
runs it first). A missing tool is a failure, not a skip: these checks guard
the deployment and must not silently disappear.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = ROOT / "terraform"
HCL_PYTHON = ROOT / ".venv-hcl" / "bin" / "python"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
SETUP_HINT = "run `bash scripts/setup-deploy-checks.sh` first"


def require_tool(path: Path | None, name: str) -> Path:
    if path is None or not path.exists():
        pytest.fail(f"{name} is missing ({path}); {SETUP_HINT}", pytrace=False)
    return path


def terraform_binary() -> Path:
    found = shutil.which("terraform")
    return require_tool(Path(found) if found else None, "terraform")


def parse_terraform(directory: Path) -> dict[str, Any]:
    """Parse every .tf file of ``directory`` with python-hcl2 (in its own venv)."""
    python = require_tool(HCL_PYTHON, ".venv-hcl")
    proc = subprocess.run(
        [str(python), str(Path(__file__).with_name("hcl_dump.py")), str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"python-hcl2 could not parse {directory}:\n{proc.stderr}", pytrace=False)
    return json.loads(proc.stdout)


@dataclass(frozen=True)
class Module:
    """A parsed Terraform module: its blocks merged across files."""

    files: dict[str, Any]

    def blocks(self, kind: str) -> Iterator[dict[str, Any]]:
        for content in self.files.values():
            yield from content.get(kind, [])

    def resources(self, rtype: str | None = None) -> dict[str, dict[str, Any]]:
        """``{"type.name": body}`` for every resource (of ``rtype`` if given)."""
        found: dict[str, dict[str, Any]] = {}
        for block in self.blocks("resource"):
            for type_, named in block.items():
                for name, body in named.items():
                    if rtype is None or type_ == rtype:
                        found[f"{type_}.{name}"] = body
        return found

    def resource(self, address: str) -> dict[str, Any]:
        rtype = address.split(".")[0]
        resources = self.resources(rtype)
        assert address in resources, f"{address} is not defined; have {sorted(resources)}"
        return resources[address]

    @property
    def variables(self) -> dict[str, dict[str, Any]]:
        return {name: body for block in self.blocks("variable") for name, body in block.items()}

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        return {name: body for block in self.blocks("output") for name, body in block.items()}

    @property
    def locals(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for block in self.blocks("locals"):
            for key, value in block.items():
                assert key not in merged, f"local.{key} is defined twice"
                merged[key] = value
        return merged


@pytest.fixture(scope="session")
def module() -> Module:
    return Module(parse_terraform(TERRAFORM_DIR))


@pytest.fixture(scope="session")
def example() -> Module:
    return Module(parse_terraform(TERRAFORM_DIR / "examples" / "basic"))


def one(blocks: list[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
    """The single block of a block list (python-hcl2 gives every block as a list)."""
    if isinstance(blocks, dict):
        return blocks
    assert len(blocks) == 1, f"expected one block, got {len(blocks)}"
    return blocks[0]


def refs(expression: Any) -> set[str]:
    """Resource / data / local / var references in an expression string, like ``google_x.y``."""
    text = json.dumps(expression)
    return set(re.findall(r"\b((?:data\.)?[a-z0-9_]+\.[a-z0-9_]+)\b", text))
