"""Durations written for people: the numbers inside user-facing messages."""

from __future__ import annotations


def describe_duration(seconds: float) -> str:
    """``1.4 s``, ``3 s``, ``12 min 5 s`` or ``2 h 0 min``.

    Under a minute the value keeps one decimal unless it is whole; above, it is
    rounded to whole seconds (under an hour) or whole minutes.
    """
    if seconds < 59.95:
        rounded = round(seconds, 1)
        return f"{rounded:.0f} s" if rounded == int(rounded) else f"{rounded:.1f} s"
    if seconds < 3600:
        minutes, secs = divmod(round(seconds), 60)
        return f"{minutes} min" if secs == 0 else f"{minutes} min {secs} s"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min"
