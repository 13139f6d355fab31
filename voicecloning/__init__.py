"""Voice cloning on Google Cloud with Coqui XTTS-v2."""

__version__ = "0.1.0"
