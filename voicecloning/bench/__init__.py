"""``python -m voicecloning bench``: this engine against stock coqui-tts, each in its own process."""
