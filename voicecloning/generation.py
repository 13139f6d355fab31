"""Generation settings a request may set, with their ranges and defaults.

XTTS's code carries three sets of defaults (``Xtts.inference``'s keyword
defaults, ``XttsConfig``'s fields, and the released ``config.json``). We use
the released ``config.json``'s values, which are what coqui's own high-level
API applies (``Xtts.synthesize`` reads them from the config):
temperature 0.75, top_k 50, top_p 0.85, repetition_penalty 5.0,
length_penalty 1.0, and speed 1.0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from voicecloning.errors import InvalidRequest


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    kind: type = float

    def check(self, name: str, value: object) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidRequest(f"'{name}' must be a number between {self.low:g} and {self.high:g}.")
        if self.kind is int and (not float(value).is_integer()):
            raise InvalidRequest(f"'{name}' must be a whole number between {self.low:g} and {self.high:g}.")
        if not (self.low <= value <= self.high):
            raise InvalidRequest(f"'{name}' is {value:g}; it must be between {self.low:g} and {self.high:g}.")
        return self.kind(value)


RANGES = {
    "temperature": Range(0.01, 2.0),
    "top_k": Range(1, 1000, int),
    "top_p": Range(0.01, 1.0),
    "repetition_penalty": Range(1.0, 20.0),
    "length_penalty": Range(-10.0, 10.0),
    "speed": Range(0.5, 2.0),
    "seed": Range(0, 2**32 - 1, int),
}


@dataclass(frozen=True)
class GenerationOptions:
    temperature: float = 0.75
    top_k: int = 50
    top_p: float = 0.85
    repetition_penalty: float = 5.0
    length_penalty: float = 1.0
    speed: float = 1.0
    seed: int | None = None

    @classmethod
    def from_request(cls, data: dict) -> GenerationOptions:
        """Validated options from the request's top-level fields (absent ones keep defaults)."""
        values = {name: rng.check(name, data[name]) for name, rng in RANGES.items() if data.get(name) is not None}
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)
