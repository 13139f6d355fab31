"""Where the XTTS-v2 checkpoint comes from, and never accepting its licence for the user."""

from __future__ import annotations

from pathlib import Path

from voicecloning.errors import ConfigurationError, LicenseNotAccepted

XTTS_V2 = "tts_models/multilingual/multi-dataset/xtts_v2"
LICENSE_TEXT = (
    "The XTTS-v2 weights are licensed under the Coqui Public Model License 1.0.0, which allows "
    "non-commercial use only (https://coqui.ai/cpml). This service will not accept it for you. Either "
    "point VOICECLONING_MODEL_DIR at an XTTS checkpoint folder (config.json, model.pth, vocab.json), "
    "or set COQUI_TOS_AGREED=1 to record that you accept the licence and let coqui-tts download the "
    "weights, or build a random-weight development model with `python -m voicecloning dev-model DIR` "
    "(tests and wiring only: its audio is noise)."
)
REQUIRED = ("config.json", "vocab.json")


def check_model_dir(path: Path) -> Path:
    """``path`` if it holds a loadable checkpoint, else a ConfigurationError naming what is missing."""
    if not path.is_dir():
        raise ConfigurationError(f"VOICECLONING_MODEL_DIR={path} is not a folder.")
    missing = [name for name in REQUIRED if not (path / name).is_file()]
    if not any((path / name).is_file() for name in ("model.pth", "model.safetensors")):
        missing.append("model.pth")
    if missing:
        raise ConfigurationError(f"The model folder {path} lacks {', '.join(missing)}.")
    return path


def default_download_dir() -> Path:
    from trainer.io import get_user_data_dir  # what coqui-tts's ModelManager uses

    return Path(get_user_data_dir("tts")) / XTTS_V2.replace("/", "--")


def resolve_model_dir(model_dir: Path | None, tos_agreed: bool) -> Path:
    """The checkpoint folder to load: configured, already downloaded, or downloaded with consent."""
    if model_dir is not None:
        return check_model_dir(model_dir)
    cached = default_download_dir()
    if (cached / "model.pth").is_file() and (cached / "config.json").is_file():
        return check_model_dir(cached)
    if not tos_agreed:
        raise LicenseNotAccepted(LICENSE_TEXT)
    from TTS.utils.manage import ModelManager

    # COQUI_TOS_AGREED=1 is in the environment: coqui records the acceptance and downloads.
    model_path, _config, _item = ModelManager(progress_bar=False).download_model(XTTS_V2)
    return check_model_dir(model_path if model_path.is_dir() else model_path.parent)
