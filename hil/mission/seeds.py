"""Seeds for deterministic runs and fault campaigns: `7` or an inclusive range `1..20`."""

from __future__ import annotations

from hil.errors import FarsideError

DEFAULT_SEED = 1
MAX_CAMPAIGN = 10_000


def parse_seeds(text: str | int | None) -> list[int]:
    """`None` -> [DEFAULT_SEED]; `"7"` -> [7]; `"3..6"` -> [3, 4, 5, 6] (both ends included)."""
    if text is None:
        return [DEFAULT_SEED]
    if isinstance(text, int):
        return [text]
    spec = text.strip()
    try:
        if ".." in spec:
            first_s, last_s = spec.split("..", 1)
            first, last = int(first_s), int(last_s)
        else:
            first = last = int(spec)
    except ValueError:
        raise FarsideError(f"expected a seed N or a range A..B, got {text!r}") from None
    if first < 0 or last < first:
        raise FarsideError(f"expected seeds 0 <= A <= B, got {text!r}")
    if last - first + 1 > MAX_CAMPAIGN:
        raise FarsideError(f"expected at most {MAX_CAMPAIGN} seeds, got {last - first + 1}")
    return list(range(first, last + 1))
