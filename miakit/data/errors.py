"""The one error for a bad dataset file: :class:`DataError`, and its checksum variant.

Every corrupt, truncated, garbled or wrong-format file a loader meets (a downloaded
archive, a file placed by hand, an extracted member, the parsed-pool cache) raises a
:class:`DataError` whose message is one line: the file, what is wrong with it, and how
to replace it. It is a :class:`ValueError`, so code that catches ``ValueError`` (the
command line does) keeps working. A file that fails its published checksum raises the
subclass :class:`ChecksumMismatchError`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ChecksumMismatchError", "DataError", "is_system_error", "one_line", "reading"]


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) folded into one space."""
    return " ".join(str(text).split())


class DataError(ValueError):
    """A dataset file is corrupt, truncated or not in the expected format.

    The message is one line: ``"<path>: <problem>. <remedy>"``.

    Attributes:
        path: The offending file (or folder).
        problem: What is wrong with it, e.g. ``"is truncated"``.
        remedy: How to replace it (may be empty while a parser raises it; the loader
            that called the parser adds the dataset's own instructions).
    """

    def __init__(self, path: str | os.PathLike[str], problem: str, remedy: str = "") -> None:
        self.path = Path(path)
        self.problem = one_line(problem).rstrip(".")
        self.remedy = one_line(remedy)
        super().__init__(f"{self.path}: {self.problem}." + (f" {self.remedy}" if remedy else ""))

    def __reduce__(self) -> tuple[type[DataError], tuple[Path, str, str]]:
        return type(self), (self.path, self.problem, self.remedy)

    def with_remedy(self, remedy: str) -> DataError:
        """The same error (same class and problem) with ``remedy`` as its advice."""
        return type(self)(self.path, self.problem, remedy)


class ChecksumMismatchError(DataError):
    """A dataset file does not match its published checksum (or size); it was not used."""


def is_system_error(err: BaseException) -> bool:
    """True for an operating-system failure (disk full, permission, missing file), which
    says nothing about the file's content; parsers let those through unchanged."""
    return isinstance(err, OSError) and err.errno is not None


def _symptom(path: Path, err: BaseException) -> str:
    with contextlib.suppress(OSError):
        if path.stat().st_size == 0:
            return "it is empty"
    text = str(err).lower()
    ends = any(s in text for s in ("truncated", "end of data", "ended before"))
    if isinstance(err, EOFError) or (ends and "could not be opened" not in text):
        return "it is truncated"
    return "its content is garbled or in another format"


@contextlib.contextmanager
def reading(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Turn any failure while parsing ``path`` into one :class:`DataError`.

    A parser of an untrusted file can fail in many ways (``EOFError``, ``zlib.error``,
    ``UnpicklingError``, a library's own error, ``MemoryError`` for a garbled length
    field); all of them mean the same to a user: the file is bad. Operating-system
    failures (:func:`is_system_error`) and :class:`DataError` pass through unchanged.

    Args:
        path: The file being read, named in the message.
        what: What it should be, e.g. ``"a CIFAR batch"``.
    """
    try:
        yield
    except DataError:
        raise
    except Exception as err:  # every parse failure of a bad file is a DataError
        if is_system_error(err):
            raise
        raise DataError(path, f"cannot be read as {what}: {_symptom(Path(path), err)}") from err
