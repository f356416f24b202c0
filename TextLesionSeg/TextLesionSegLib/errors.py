"""Errors a user can act on, each with the documented exit code of the CLI.

Exit codes (README, "Exit codes"): 0 success, 1 internal error (traceback goes to a log file),
2 bad input, 3 model or weights problem, 4 not enough memory.
"""

from __future__ import annotations


class TextLesionSegError(Exception):
    """Base class of the errors shown to a user as one line, without a traceback."""

    exit_code = 1


class InputError(TextLesionSegError):
    """The user's image, text, option or output path is unusable (exit code 2)."""

    exit_code = 2


class ModelError(TextLesionSegError):
    """A model, its weights or its registry entry is missing or unusable (exit code 3)."""

    exit_code = 3


class InsufficientMemoryError(TextLesionSegError):
    """The job needs more memory than the machine has (exit code 4)."""

    exit_code = 4


class CancelledError(TextLesionSegError):
    """The user cancelled the job; nothing was written."""

    exit_code = 130
