"""The one error type of configuration: every problem names its field and where it was set."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    path: str  # dotted field path, e.g. "venues.binance-usdm.lanes.1"
    message: str
    source: str  # the file, environment variable or command-line option that set it

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}{self.message} ({self.source})"


class ConfigError(ValueError):
    """Invalid configuration. A ValueError, so callers that already refuse bad settings
    (the CLI's exit code 2, CaptureSettings' users) handle it unchanged."""

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("ConfigError needs at least one problem")
        self.problems = problems
        lines = [str(p) for p in problems]
        head = "invalid configuration: " + lines[0]
        super().__init__("\n  ".join([head, *lines[1:]]))

    @property
    def path(self) -> str:
        """The first problem's field path."""
        return self.problems[0].path
