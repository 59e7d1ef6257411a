"""Downloads: the data root, fetching and verifying files, extracting archives, the pool cache.

The paper's seven datasets are downloaded on first use into the data root
(:func:`data_root`), one sub-folder per dataset, verified by checksum where one is
published, written atomically (temporary file, then rename), and their parsed pool is
cached as ``<name>-pool-v1.npz`` (raw uint8 pixels or 0/1 features, no pickle) beside
the raw files, so later loads skip the slow parsing (delete it to parse the raw files
again). Offline, a missing file raises one :class:`DatasetUnavailableError` that names
the file, the URL and the exact path at which to place it by hand.
"""

from __future__ import annotations

import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.request
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from miakit._util import atomic_write, file_digest, user_dir
from miakit.data.info import DatasetInfo, RemoteFile

__all__ = [
    "DOWNLOAD_TIMEOUT_S",
    "ChecksumMismatchError",
    "DatasetUnavailableError",
    "cached_pool",
    "data_root",
    "download_file",
    "ensure_extracted",
    "extract",
    "fetch",
    "find_member",
    "verify",
]

#: Seconds a download may stall (connect or read) before it counts as unavailable.
DOWNLOAD_TIMEOUT_S = 30.0
_CACHE_VERSION = 1


class DatasetUnavailableError(FileNotFoundError):
    """A dataset file is neither on disk nor downloadable (offline, or ``download=False``).

    The message names the file, the URL(s) it comes from and the exact path at which
    to place it by hand.
    """


class ChecksumMismatchError(ValueError):
    """A dataset file does not match its published checksum (or size); it was not used."""


class _DownloadFailed(Exception):
    """One URL could not be downloaded; the message is the line for the final error."""


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder that holds downloaded datasets (one sub-folder per dataset).

    Args:
        root: Explicit folder; wins over everything else.

    Returns:
        ``root`` if given, else ``$MIAKIT_DATA``, else ``$XDG_CACHE_HOME/miakit/data``,
        else ``~/.cache/miakit/data``. The folder is not created here.
    """
    return user_dir("MIAKIT_DATA", "data", explicit=root)


def download_file(url: str, dest: Path, *, timeout: float) -> None:
    """Stream ``url`` into ``dest`` (the caller owns temp naming and the final rename)."""
    request = urllib.request.Request(url, headers={"User-Agent": "miakit"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)


def verify(path: Path, remote: RemoteFile, *, origin: str) -> None:
    """Check size and checksum of ``path`` against ``remote`` (no-op where unknown).

    Args:
        path: The local file.
        remote: The published facts about it.
        origin: Where the file came from, for the error message.

    Raises:
        ChecksumMismatchError: The size or the digest differs from the published one.
    """
    if remote.size is not None and path.stat().st_size != remote.size:
        raise ChecksumMismatchError(
            f"size mismatch for {remote.filename} ({origin}): expected {remote.size} bytes, "
            f"got {path.stat().st_size}."
        )
    if remote.checksum is None:
        return
    algorithm, _, expected = remote.checksum.partition(":")
    actual = file_digest(path, algorithm)
    if actual.lower() != expected.lower():
        raise ChecksumMismatchError(
            f"checksum mismatch for {remote.filename} ({origin}): expected {algorithm} "
            f"{expected}, got {actual}."
        )


def _manual_instructions(info: DatasetInfo, remote: RemoteFile, path: Path) -> str:
    check = (
        f"its {remote.checksum.replace(':', ' ')} is checked"
        if remote.checksum
        else "no published checksum is known, so it is not verified"
    )
    return (
        f"To fix it, download it by hand from\n  {remote.urls[0]}\nand save it as\n  {path}\n"
        f"({check}), then call load_dataset({info.name!r}) again. To use another data "
        "folder, pass root=... or set the MIAKIT_DATA environment variable."
    )


def fetch(info: DatasetInfo, remote: RemoteFile, directory: Path, *, download: bool) -> Path:
    """Return the verified local path of ``remote``, downloading it atomically if needed.

    The URLs are tried in order; each download goes to a temporary file that replaces
    ``directory / remote.filename`` only once it has passed :func:`verify`.

    Raises:
        DatasetUnavailableError: The file is missing and cannot be downloaded.
        ChecksumMismatchError: The file on disk, or the one downloaded, fails its
            checksum; a downloaded copy is deleted, a copy placed by hand is left alone.
    """
    path = directory / remote.filename
    if path.is_file():
        try:
            verify(path, remote, origin=f"file on disk at {path}")
        except ChecksumMismatchError as err:
            raise ChecksumMismatchError(
                f"{err} The file is corrupt or not the published one and was not used. "
                f"Delete it to download it again, or replace it by hand.\n"
                f"{_manual_instructions(info, remote, path)}"
            ) from None
        return path
    if not download:
        raise DatasetUnavailableError(
            f"{info.title or info.name} needs the file {remote.filename!r}, which is not at\n"
            f"  {path}\nand download=False.\n{_manual_instructions(info, remote, path)}"
        )
    failures: list[str] = []
    for url in remote.urls:

        def download_verified(tmp: Path, url: str = url) -> None:
            try:
                download_file(url, tmp, timeout=DOWNLOAD_TIMEOUT_S)
            except (OSError, http.client.HTTPException, ValueError) as err:
                raise _DownloadFailed(f"  {url}: {err}") from err
            verify(tmp, remote, origin=f"downloaded from {url}")

        try:
            return atomic_write(path, download_verified)
        except _DownloadFailed as failure:
            failures.append(str(failure))
        except ChecksumMismatchError as err:
            raise ChecksumMismatchError(
                f"{err} The download was deleted and not used; try again later, or fetch "
                f"the file by hand.\n{_manual_instructions(info, remote, path)}"
            ) from None
    raise DatasetUnavailableError(
        f"{info.title or info.name} needs the file {remote.filename!r}, which is not at\n"
        f"  {path}\nand could not be downloaded (no network?):\n"
        + "\n".join(failures)
        + f"\n{_manual_instructions(info, remote, path)}"
    )


def extract(archive: Path, directory: Path) -> None:
    """Extract a .tar(.gz) or .zip archive into ``directory`` without leaving half-written
    entries: it is unpacked into a temporary folder first, then each top-level entry is
    moved into place (replacing an entry of the same name)."""
    tmp = Path(tempfile.mkdtemp(dir=directory, prefix=".extract-"))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)  # zipfile strips absolute paths and "..".
        else:
            with tarfile.open(archive) as tf:
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(tmp, filter="data")
                else:  # pragma: no cover - Python without PEP 706 filters.
                    for member in tf.getmembers():
                        target = (tmp / member.name).resolve()
                        if not target.is_relative_to(tmp.resolve()):
                            raise ValueError(f"unsafe path {member.name!r} in {archive}.")
                    tf.extractall(tmp)
        for entry in tmp.iterdir():
            target = directory / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def find_member(directory: Path, relative: str) -> Path | None:
    """``directory / relative`` if it exists, else the unique file of that base name
    (outside hidden folders), else ``None``."""
    path = directory / relative
    if path.exists():
        return path
    matches = [
        p
        for p in directory.rglob(Path(relative).name)
        if not any(part.startswith(".") for part in p.relative_to(directory).parts)
    ]
    return matches[0] if len(matches) == 1 else None


def ensure_extracted(
    info: DatasetInfo, directory: Path, members: Sequence[str], *, download: bool
) -> list[Path]:
    """Paths of ``members`` (files or folders) of the dataset's archive, fetching and
    extracting the archive (``info.files[0]``) first if any is missing.

    Raises:
        DatasetUnavailableError: A member is missing and the archive cannot be fetched;
            the message also says which extracted folders would do instead.
        FileNotFoundError: The archive does not contain every member.
    """
    found = [find_member(directory, m) for m in members]
    if all(p is not None for p in found):
        return [p for p in found if p is not None]
    try:
        archive = fetch(info, info.files[0], directory, download=download)
    except DatasetUnavailableError as err:
        tops = sorted({str(directory / m.split("/")[0]) for m in members})
        raise DatasetUnavailableError(
            f"{err}\nAlternatively, extract the archive by hand so that "
            f"{' and '.join(tops)} exist{'s' if len(tops) == 1 else ''}."
        ) from None
    extract(archive, directory)
    found = [find_member(directory, m) for m in members]
    missing = [m for m, p in zip(members, found, strict=True) if p is None]
    if missing:
        raise FileNotFoundError(
            f"{archive} was extracted into {directory} but does not contain {missing}; the "
            "archive is not the expected one. Delete it and the extracted files, then retry."
        )
    return [p for p in found if p is not None]


def cached_pool(
    directory: Path, name: str, build: Callable[[], tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """Raw pool arrays from ``<name>-pool-v1.npz`` in ``directory``, else ``build()``
    them and write that cache atomically (no pickle: ``allow_pickle=False``).

    A cache that cannot be written only warns: the raw files are parsed again next time.
    """
    cache = directory / f"{name}-pool-v{_CACHE_VERSION}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            return z["x"], z["y"]
    x, y = build()

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a path
            np.savez(fh, x=x, y=y)

    try:
        atomic_write(cache, write)
    except OSError as err:
        warnings.warn(
            f"could not write the parsed-dataset cache {cache} ({err}); the raw files "
            "will be parsed again next time.",
            stacklevel=4,
        )
    return x, y
