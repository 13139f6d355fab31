"""Print the Terraform files of one directory as JSON (run with .venv-hcl/bin/python).

python-hcl2 lives in its own venv because checkov vendors a fork under the
same import name. Output: {"<file name>": <python-hcl2 dict>, ...}; strings
without their quotes, expressions as "${...}", blocks as lists of dicts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hcl2
from hcl2 import SerializationOptions

OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


def main(directory: str) -> None:
    files = sorted(Path(directory).glob("*.tf"))
    if not files:
        sys.exit(f"no .tf files in {directory}")
    parsed = {f.name: hcl2.loads(f.read_text(encoding="utf-8"), serialization_options=OPTIONS) for f in files}
    json.dump(parsed, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
