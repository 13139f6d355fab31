#!/usr/bin/env bash
# Create the two tool venvs the deployment tests use (idempotent).
#
#   .venv-checkov  checkov, run offline (--skip-download) against terraform/
#   .venv-hcl      python-hcl2, which parses terraform/ into JSON for the tests
#
# They are separate because checkov vendors a fork of python-hcl2 under the
# same import name, which shadows the real one.
# A venv is (re)built only when its pinned tool is missing or at another
# version, so a second run costs a couple of seconds.
set -euo pipefail

CHECKOV_VERSION="3.3.30"
PYTHON_HCL2_VERSION="8.1.4"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

ensure_venv() {
  # ensure_venv DIR PACKAGE VERSION
  local dir="$1" package="$2" version="$3"
  if [[ -x "$dir/bin/python" ]] &&
    [[ "$("$dir/bin/python" -m pip show "$package" 2>/dev/null | sed -n 's/^Version: //p')" == "$version" ]]; then
    echo "setup-deploy-checks: $package==$version already in ${dir#"$ROOT"/}"
    return
  fi
  echo "setup-deploy-checks: installing $package==$version into ${dir#"$ROOT"/}"
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  # pip.conf here lists local index folders that may not exist: drop those warnings only
  # (pipefail keeps pip's exit status).
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$package==$version" 2>&1 |
    { grep -v "is neither a file nor a directory" || true; }
}

ensure_venv "$ROOT/.venv-checkov" checkov "$CHECKOV_VERSION"
ensure_venv "$ROOT/.venv-hcl" python-hcl2 "$PYTHON_HCL2_VERSION"

if ! command -v terraform >/dev/null 2>&1; then
  echo "setup-deploy-checks: warning: terraform is not on PATH; tests/deploy will fail on 'terraform fmt'" >&2
fi
