"""Dockerfile and Dockerfile.gpu build the image the Terraform module deploys.

No Docker engine here: these parse the files with dockerfile-parse and check
the properties the deployment relies on.
"""

from __future__ import annotations

import ast
import fnmatch
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = ["Dockerfile", "Dockerfile.gpu"]


def parse(name: str) -> list[dict[str, str]]:
    # fileobj, not path: a parser bound to a path writes .content back to that file.
    with open(ROOT / name, "rb") as handle:
        return DockerfileParser(fileobj=handle).structure


def stages(name: str) -> dict[str, list[dict[str, str]]]:
    """Instructions per build stage, keyed by stage name."""
    result: dict[str, list[dict[str, str]]] = {}
    current = None
    for instr in parse(name):
        if instr["instruction"] == "FROM":
            current = instr["value"].split(" AS ")[-1].strip() if " AS " in instr["value"] else instr["value"]
            result[current] = []
        elif current is not None:
            result[current].append(instr)
    return result


def global_args(name: str) -> dict[str, str]:
    args = {}
    for instr in parse(name):
        if instr["instruction"] == "FROM":
            break
        if instr["instruction"] == "ARG" and "=" in instr["value"]:
            key, value = instr["value"].split("=", 1)
            args[key] = value
    return args


def final_stage_chain(name: str) -> list[dict[str, str]]:
    """Instructions that end up in the final image: the last stage and the stages it builds FROM."""
    froms = [i["value"] for i in parse(name) if i["instruction"] == "FROM"]
    parents = {v.split(" AS ")[1].strip(): v.split(" AS ")[0].strip() for v in froms if " AS " in v}
    by_stage = stages(name)
    chain, stage = [], froms[-1].split(" AS ")[-1].strip()
    while stage in by_stage:
        chain = by_stage[stage] + chain
        stage = parents.get(stage, "")
    return chain


def test_cpu_image_is_pinned_python_311_slim() -> None:
    """The CPU base is python:3.11.X-slim with an exact patch version (or a digest), never a floating tag."""
    base = global_args("Dockerfile")["PYTHON_IMAGE"]
    assert re.fullmatch(
        r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?|python:3\.11[\w.-]*@sha256:[0-9a-f]{64}", base
    ), base
    first_from = next(i["value"] for i in parse("Dockerfile") if i["instruction"] == "FROM")
    assert first_from.startswith("${PYTHON_IMAGE}")


def test_gpu_image_has_no_cuda_base_and_cuda_12_wheels() -> None:
    """Same pinned Python base as the CPU image (the torch wheels carry CUDA); torch from a CUDA 12.x index.

    Cloud Run's L4 driver is 535 (CUDA 12.2): 12.x builds run by minor-version compatibility, 13.x do not
    start, and PyPI's torch 2.13.0 Linux wheel is a CUDA 13 build.
    """
    assert global_args("Dockerfile.gpu")["PYTHON_IMAGE"] == global_args("Dockerfile")["PYTHON_IMAGE"]
    assert "CUDA_IMAGE" not in global_args("Dockerfile.gpu")
    assert not any(i["instruction"] == "FROM" and "nvidia/cuda" in i["value"] for i in parse("Dockerfile.gpu"))
    index = next(
        i["value"]
        for i in parse("Dockerfile.gpu")
        if i["instruction"] == "ARG" and i["value"].startswith("TORCH_INDEX_URL=")
    )
    assert re.fullmatch(r"TORCH_INDEX_URL=https://download\.pytorch\.org/whl/cu12\d", index), index
    env = " ".join(i["value"] for i in stages("Dockerfile.gpu")["runtime"] if i["instruction"] == "ENV")
    assert "/usr/local/nvidia/lib64" in env and "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in env


@pytest.mark.parametrize("name", DOCKERFILES)
def test_runs_as_a_non_root_user(name: str) -> None:
    users = [i["value"].strip() for i in final_stage_chain(name) if i["instruction"] == "USER"]
    assert users, "no USER instruction in the final image"
    assert users[-1].split(":")[0] not in ("root", "0")


@pytest.mark.parametrize("name", DOCKERFILES)
def test_torch_then_requirements_then_code(name: str) -> None:
    """torch from a PyTorch index first, then requirements.txt, and the application code only after both."""
    chain = final_stage_chain(name)
    text = [f"{i['instruction']} {i['value']}" for i in chain]

    def index(pattern: str) -> int:
        hits = [n for n, line in enumerate(text) if re.search(pattern, line)]
        assert hits, f"nothing matches {pattern!r}"
        return hits[0]

    torch = index(r"^RUN pip install --index-url \S+ torch==2\.13\.0 torchaudio==2\.11\.0")
    copy_req = index(r"^COPY requirements\.txt")
    install_req = index(r"^RUN pip install -r requirements\.txt")
    first_code = index(r"^COPY (main\.py|voicecloning|\.)")
    assert torch < copy_req < install_req < first_code
    torch_index = next(
        i["value"] for i in chain if i["instruction"] == "ARG" and i["value"].startswith("TORCH_INDEX_URL=")
    )
    expected = "whl/cpu" if name == "Dockerfile" else "whl/cu12"
    assert expected in torch_index


@pytest.mark.parametrize("name", DOCKERFILES)
def test_cmd_starts_functions_framework_with_function_target(name: str) -> None:
    cmd = [i["value"] for i in parse(name) if i["instruction"] == "CMD"][-1]
    assert re.search(r"\bexec functions-framework\b", cmd)
    assert '--target="${FUNCTION_TARGET}"' in cmd
    assert "${PORT:-8080}" in cmd


@pytest.mark.parametrize("name", DOCKERFILES)
def test_coqui_download_is_gated_on_the_licence(name: str) -> None:
    """The download route declares COQUI_TOS_AGREED (default not 1) and fails with a CPML message unless it is 1."""
    coqui = stages(name)["weights-coqui"]
    assert any(i["instruction"] == "ARG" and i["value"] == "COQUI_TOS_AGREED=0" for i in coqui)
    gate = next(i["value"] for i in coqui if i["instruction"] == "RUN")
    assert re.search(r'if \[ "\$\{COQUI_TOS_AGREED\}" != "1" \]; then .*exit 1;', gate, re.S)
    assert "Coqui Public Model License" in gate and "NON-COMMERCIAL" in gate
    assert gate.index("exit 1") < gate.index("ModelManager")


def _parents(name: str) -> dict[str, str]:
    froms = [i["value"] for i in parse(name) if i["instruction"] == "FROM"]
    return {v.split(" AS ")[1].strip(): v.split(" AS ")[0].strip() for v in froms if " AS " in v}


def _ancestry(name: str, stage: str) -> list[str]:
    parents, chain = _parents(name), [stage]
    while chain[-1] in parents:
        chain.append(parents[chain[-1]])
    return chain


CODE_COPY = re.compile(r"^(main\.py|voicecloning/ |handlers/|\. )")
CONVERTER = {"voicecloning/__init__.py", "voicecloning/engine/__init__.py"}


@pytest.mark.parametrize("name", DOCKERFILES)
def test_three_model_routes_and_build_time_conversion(name: str) -> None:
    """MODEL_SOURCE picks context, coqui or none; the converted model lands in /opt/model-fast."""
    by_stage = stages(name)
    assert {"weights-context", "weights-coqui", "weights-none", "weights", "converted", "runtime"} <= set(by_stage)
    assert global_args(name)["MODEL_SOURCE"] == "coqui"
    froms = [i["value"] for i in parse(name) if i["instruction"] == "FROM"]
    assert "weights-${MODEL_SOURCE} AS weights" in froms
    convert = " ".join(i["value"] for i in by_stage["converted"] if i["instruction"] == "RUN")
    assert "--mount=type=bind,from=weights,source=/opt/model,target=/opt/model" in convert
    assert "from voicecloning.engine.convert import convert_checkpoint" in convert
    assert "Path('/opt/model'), Path('/opt/model-fast')" in convert
    assert any(i["instruction"] == "COPY" and "model/ /opt/model/" in i["value"] for i in by_stage["weights-context"])
    runtime = by_stage["runtime"]
    assert any(i["instruction"] == "COPY" and "--from=converted" in i["value"] for i in runtime)
    env = " ".join(i["value"] for i in runtime if i["instruction"] == "ENV")
    assert "VOICECLONING_MODEL_DIR=/opt/model-fast" in env


@pytest.mark.parametrize("name", DOCKERFILES)
def test_weights_do_not_depend_on_the_code(name: str) -> None:
    """Weight stages build FROM base, without code; conversion copies only the converter's modules."""
    by_stage = stages(name)
    for stage in ("weights-context", "weights-coqui", "weights-none", "converted"):
        assert "app" not in _ancestry(name, stage), f"{stage} is built FROM app: a code edit would redo the weights"
        for chain_stage in _ancestry(name, stage):
            for instr in by_stage.get(chain_stage, []):
                if instr["instruction"] == "COPY":
                    assert not CODE_COPY.match(instr["value"]), f"{chain_stage}: {instr['value']}"
    copied = set()
    for instr in by_stage["converted"]:
        if instr["instruction"] == "COPY":
            *sources, dest = instr["value"].replace("\\\n", " ").split()
            copied |= {src for src in sources if not src.startswith("--")}
    assert copied >= CONVERTER
    needed = _local_imports(ROOT / "voicecloning" / "engine" / "convert.py")
    missing = {f"{m.replace('.', '/')}.py" for m in needed} - copied
    assert not missing, f"the converter imports {sorted(missing)}, which the converted stage does not copy"


def _local_imports(path: Path, seen: set[str] | None = None) -> set[str]:
    """Every voicecloning.* module ``path`` imports, transitively (function-level imports too)."""
    seen = set() if seen is None else seen
    for node in ast.walk(ast.parse(path.read_text())):
        module = node.module if isinstance(node, ast.ImportFrom) else None
        if module and module.startswith("voicecloning.") and module not in seen:
            seen.add(module)
            _local_imports(ROOT / f"{module.replace('.', '/')}.py", seen)
    return seen


def test_runtime_requirements_are_pinned_exactly() -> None:
    """Every requirement the images install is name[extras]==version, so a rebuild installs the same set."""
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.-]+(\[[a-z,]+\])?==[\w.]+", line), line


def test_gpu_image_selects_cuda() -> None:
    env = " ".join(i["value"] for i in stages("Dockerfile.gpu")["runtime"] if i["instruction"] == "ENV")
    assert "VOICECLONING_DEVICE=cuda" in env and "FUNCTION_TARGET=on_push" in env


def test_code_copied_into_the_image_covers_main_imports() -> None:
    """Every local module main.py imports is COPY'd into the image (skipped until main.py exists)."""
    main = ROOT / "main.py"
    if not main.exists():
        pytest.skip("main.py is not written yet")
    copied = " ".join(i["value"] for i in final_stage_chain("Dockerfile") if i["instruction"] == "COPY")
    tree = ast.parse(main.read_text())
    local = set()
    for node in ast.walk(tree):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else ([node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
        )
        for name in names:
            top = name.split(".")[0]
            if (ROOT / top).is_dir() or (ROOT / f"{top}.py").exists():
                local.add(top)
    for top in local:
        assert re.search(rf"\b{top}(/|\.py)", copied), f"main.py imports {top}, which the Dockerfile does not copy"


# --------------------------------------------------------------------------- .dockerignore


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; '!' re-includes; a match on a parent dir excludes the path."""
    result = False
    parts = path.split("/")
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if (
                fnmatch.fnmatchcase(prefix, pat)
                or (pat.startswith("**/") and fnmatch.fnmatchcase(prefix, pat[3:]))
                or (pat.startswith("**/") and fnmatch.fnmatchcase(parts[depth - 1], pat[3:]))
            ):
                result = not negate
                break
    return result


@pytest.fixture(scope="module")
def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".venv-checkov/bin/checkov",
        ".venv-hcl/bin/python",
        "data/input/voices/a.wav",
        "tests/deploy/test_dockerfile.py",
        ".cache/huggingface/hub/x",
        "voicecloning/.cache/x",
        "model/dvae.pth",
        "model/mel_stats.pth",
        "terraform/main.tf",
        ".git/HEAD",
        "voicecloning/__pycache__/x.pyc",
        "web/node_modules/firebase/package.json",
        "models/dev-full/model.pth",
    ],
)
def test_dockerignore_excludes(dockerignore: list[str], path: str) -> None:
    assert ignored(path, dockerignore), f"{path} would be sent to the build context"


@pytest.mark.parametrize(
    "path",
    [
        "requirements.txt",
        "main.py",
        "voicecloning/settings.py",
        "model/model.pth",
        "model/config.json",
        "model/vocab.json",
    ],
)
def test_dockerignore_keeps_what_the_build_needs(dockerignore: list[str], path: str) -> None:
    assert not ignored(path, dockerignore), f"{path} is needed by the build but ignored"


# --------------------------------------------------------------------------- .gcloudignore


def gcloud_ignored(paths: list[str]) -> set[str]:
    """The paths .gcloudignore leaves out, by git's own matcher (gcloudignore uses gitignore syntax)."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["git", "init", "-q", tmp], check=True)
        shutil.copyfile(ROOT / ".gcloudignore", Path(tmp) / ".gitignore")
        proc = subprocess.run(
            ["git", "-C", tmp, "check-ignore", "--no-index", "--stdin"],
            input="\n".join(paths),
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode in (0, 1), proc.stderr
        return set(proc.stdout.split())


GCLOUD_KEEPS = [
    "Dockerfile",
    "Dockerfile.gpu",
    ".dockerignore",
    "requirements.txt",
    "main.py",
    "voicecloning/settings.py",
    "voicecloning/engine/convert.py",
    "handlers/dispatch.py",
    "model/model.pth",
    "model/config.json",
    "model/vocab.json",
]
GCLOUD_DROPS = [
    "web/node_modules/firebase/package.json",
    "web/public/app.js",
    ".venv/bin/python",
    ".venv-checkov/bin/checkov",
    ".git/HEAD",
    "tests/deploy/test_dockerfile.py",
    "models/dev-full/model.pth",
    "model/dvae.pth",
    "terraform/main.tf",
    "voicecloning/__pycache__/x.pyc",
    "data/input/voices/a.wav",
]


def test_gcloudignore_uploads_the_build_context_only() -> None:
    """Cloud Build gets what docker build needs, never web/node_modules, venvs or dev models."""
    ignored_paths = gcloud_ignored(GCLOUD_KEEPS + GCLOUD_DROPS)
    assert not ignored_paths & set(GCLOUD_KEEPS), sorted(ignored_paths & set(GCLOUD_KEEPS))
    assert set(GCLOUD_DROPS) <= ignored_paths, sorted(set(GCLOUD_DROPS) - ignored_paths)
