"""One exception hierarchy for tstack. Every message says what is wrong and how to fix it."""

from __future__ import annotations


class TstackError(Exception):
    """Base class of every error tstack raises on purpose; the CLI prints its message as one line."""


class SpecError(TstackError):
    """A model, device or hardware description is malformed, unknown or inconsistent."""


class UnsupportedModelError(SpecError):
    """A Hugging Face config of a family tstack cannot translate."""


class WorkloadError(TstackError):
    """A workload cannot be built for the requested phase, batch or sequence length."""


class InfeasibleError(TstackError):
    """A mapping or hardware configuration cannot hold the requested operation."""


class DataError(TstackError):
    """A text corpus, tokenizer or training checkpoint is missing, empty, unreadable or inconsistent."""
