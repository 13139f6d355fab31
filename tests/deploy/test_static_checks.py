"""terraform fmt and checkov pass on terraform/, with every skip inline and justified."""

from __future__ import annotations

import re
import subprocess

from tests.deploy.conftest import CHECKOV, ROOT, TERRAFORM_DIR, require_tool, terraform_binary


def test_terraform_is_formatted() -> None:
    proc = subprocess.run(
        [str(terraform_binary()), "fmt", "-check", "-recursive", "-diff", str(TERRAFORM_DIR)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"run `terraform fmt -recursive terraform/`:\n{proc.stdout}"


def test_checkov_finds_no_failed_checks() -> None:
    """checkov (offline) reports zero failed checks; skips only through inline #checkov:skip comments."""
    checkov = require_tool(CHECKOV, ".venv-checkov")
    proc = subprocess.run(
        [str(checkov), "--skip-download", "-d", str(TERRAFORM_DIR), "--compact", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    summary = re.search(r"Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)", proc.stdout)
    assert summary, f"no checkov summary (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    passed, failed, _ = map(int, summary.groups())
    assert failed == 0, proc.stdout
    assert passed > 0
    assert proc.returncode == 0, proc.stdout


def test_checkov_skips_name_a_check_and_a_reason() -> None:
    """Every skip names one CKV_ check and says why, so a reviewer can judge it."""
    for path in sorted(TERRAFORM_DIR.rglob("*.tf")):
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                assert re.fullmatch(r"\s*#checkov:skip=CKV2?_[A-Z]+_\d+:\S.{20,}", line), f"{path.name}: {line.strip()}"
