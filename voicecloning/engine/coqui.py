"""coqui-tts's package without its import-time checks: a worker start ~0.3-0.7 s shorter.

``import TTS`` first runs ``TTS/__init__.py``, which scans every installed
distribution (``importlib.metadata.packages_distributions()``) and probes
torch, torchaudio and torchcodec before any submodule loads. Those are
install checks: the image build already made them (the Dockerfile and
``scripts/setup.sh`` import coqui's model code), so every instance paying
them again at start buys nothing. :func:`register_package` puts the package
object in ``sys.modules`` without running its ``__init__`` (only
``__version__`` is set, from the installed metadata), so submodules import
as usual. It does nothing when ``TTS`` is already imported.

Used only for converted model folders (``engine.skeleton``); coqui-format
folders go through coqui's own ``Xtts`` and its normal import.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys

PACKAGE = "TTS"
DISTRIBUTION = "coqui-tts"


def register_package() -> bool:
    """True if the package was registered here; False if it was imported already (or is not installed)."""
    if PACKAGE in sys.modules:
        return False
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.submodule_search_locations is None:
        return False
    module = importlib.util.module_from_spec(spec)  # __path__ and __spec__ set; __init__ not executed
    module.__version__ = importlib.metadata.version(DISTRIBUTION)  # type: ignore[attr-defined]
    sys.modules[PACKAGE] = module
    return True
