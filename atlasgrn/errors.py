"""User-facing errors.

Every failure caused by the user's input is an :class:`AtlasgrnError`: the CLI prints it as one
line (file, key, remedy) and exits with code 2, so scripts and schedulers can tell bad input
(exit 2) from crashes (exit 1) without parsing tracebacks.
"""

from __future__ import annotations

EXIT_BAD_INPUT = 2


class AtlasgrnError(Exception):
    """Bad input: names what was wrong, where, and how to fix it, in one line."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None,
                 remedy: str | None = None) -> None:
        self.path = path
        self.key = key
        self.remedy = remedy
        self.detail = message
        super().__init__(self._one_line())

    def _one_line(self) -> str:
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if self.key is not None:
            where.append(f"key '{self.key}'")
        text = (": ".join([", ".join(where), self.detail]) if where else self.detail)
        if self.remedy:
            text = f"{text} (fix: {self.remedy})"
        return " ".join(text.split())  # one line, whatever the parts contained


class AtlasFormatError(AtlasgrnError):
    """The store exists but is not an atlas this version can read."""


class AtlasReadError(AtlasgrnError):
    """A read failed permanently (after retries for transient errors)."""


class IngestError(AtlasgrnError):
    """An input file cannot be ingested as given."""


class CheckpointError(AtlasgrnError):
    """A model or translator checkpoint is missing, malformed or unsafe."""
