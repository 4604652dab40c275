"""Reading JSON-lines input files (`sluice warm`, `sluice index load`): a file that cannot be read
or is not UTF-8 is a ConfigError naming the file (and the line), never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sluice.errors import ConfigError


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) for each non-blank line, decoded as UTF-8 (a leading BOM is dropped)."""
    try:
        with path.open("rb") as f:
            for number, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as e:
                    raise ConfigError(
                        f"{path}:{number}: not UTF-8 text (byte {raw[e.start]:#04x} at column {e.start + 1}); "
                        "save the file as UTF-8"
                    ) from None
                if line.strip():
                    yield number, line
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
