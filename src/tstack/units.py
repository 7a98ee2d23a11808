"""The only place where units are converted. Names carry their unit; factors are exact powers of ten or two."""

from __future__ import annotations

BITS_PER_BYTE = 8
GIGA = 1e9
TERA = 1e12


def bits_to_bytes(bits: float) -> float:
    return bits / BITS_PER_BYTE


def to_giga(value: float) -> float:
    return value / GIGA


def seconds_to_ms(seconds: float) -> float:
    return seconds * 1e3


def tera_per_s_to_per_s(tera_per_s: float) -> float:
    return tera_per_s * TERA


def gb_per_s_to_bytes_per_s(gb_per_s: float) -> float:
    """Decimal gigabytes per second (as vendors quote memory bandwidth) to bytes per second."""
    return gb_per_s * GIGA
