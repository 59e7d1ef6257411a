"""Downloads: the data root, fetching and verifying files, extracting archives, the pool cache.

The paper's seven datasets are downloaded on first use into the data root
(:func:`data_root`), one sub-folder per dataset, verified by checksum where one is
published, written atomically (temporary file, then rename), and their parsed pool is
cached as ``<name>-pool-v1.npz`` (raw uint8 pixels or 0/1 features, no pickle) beside
the raw files, so later loads skip the slow parsing (delete it to parse the raw files
again; the cache lives in :mod:`miakit.data.pool`, its :func:`cached_pool` is
re-exported here). Offline, a missing file raises one :class:`DatasetUnavailableError` that names
the file, the URL and the exact path at which to place it by hand. A file that is there
but bad (failing its checksum, a truncated or garbled archive or cache) raises one
:class:`~miakit.data.errors.DataError` whose one-line message names the file and says
how to replace it (:func:`replace_hint`).
"""

from __future__ import annotations

import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

from miakit._util import atomic_write, file_digest, user_dir
from miakit.data.errors import ChecksumMismatchError, DataError, reading
from miakit.data.info import DatasetInfo, RemoteFile
from miakit.data.pool import cached_pool

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
    "replace_hint",
    "verify",
]

#: Seconds a download may stall (connect or read) before it counts as unavailable.
DOWNLOAD_TIMEOUT_S = 30.0


class DatasetUnavailableError(FileNotFoundError):
    """A dataset file is neither on disk nor downloadable (offline, or ``download=False``).

    The message names the file, the URL(s) it comes from and the exact path at which
    to place it by hand.
    """


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
            path,
            f"size mismatch for {remote.filename} ({origin}): expected {remote.size} bytes, "
            f"got {path.stat().st_size}",
        )
    if remote.checksum is None:
        return
    algorithm, _, expected = remote.checksum.partition(":")
    actual = file_digest(path, algorithm)
    if actual.lower() != expected.lower():
        raise ChecksumMismatchError(
            path,
            f"checksum mismatch for {remote.filename} ({origin}): expected {algorithm} "
            f"{expected}, got {actual}",
        )


def _check_note(remote: RemoteFile) -> str:
    if remote.checksum:
        return f"its {remote.checksum.replace(':', ' ')} is checked"
    return "no published checksum is known, so it is not verified"


def _manual_instructions(info: DatasetInfo, remote: RemoteFile, path: Path) -> str:
    return (
        f"To fix it, download it by hand from\n  {remote.urls[0]}\nand save it as\n  {path}\n"
        f"({_check_note(remote)}), then call load_dataset({info.name!r}) again. To use another "
        "data folder, pass root=... or set the MIAKIT_DATA environment variable."
    )


def _redownload_hint(
    info: DatasetInfo, remote: RemoteFile, path: Path, *, delete: str = "it"
) -> str:
    return (
        f"Delete {delete} and call load_dataset({info.name!r}) to download it again, or save "
        f"a correct copy from {remote.urls[0]} as {path} ({_check_note(remote)})."
    )


def replace_hint(info: DatasetInfo, directory: Path, path: Path) -> str:
    """How to replace the bad file ``path`` of dataset ``info`` (one sentence or two).

    A downloaded file (an archive, an SVHN ``.mat``) is deleted and downloaded again or
    saved by hand (its checksum named where one is published); an extracted member is
    deleted with its top folder and extracted again from the archive.
    """
    for remote in info.files:
        if path == directory / remote.filename:
            return _redownload_hint(info, remote, path)
    if info.layout is None or not info.files:
        return f"Delete it and call load_dataset({info.name!r}) again."
    archive = info.files[0]
    tops = sorted({directory / m.split("/")[0] for m in info.layout.members})
    top = next((t for t in tops if path == t or t in path.parents), path)
    return (
        f"Delete {top} and call load_dataset({info.name!r}) again to extract it afresh from "
        f"{directory / archive.filename} (downloaded from {archive.urls[0]} if absent; "
        f"{_check_note(archive)}), or extract a correct copy of that archive there by hand."
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
            verify(path, remote, origin="the file on disk")
        except ChecksumMismatchError as err:
            raise ChecksumMismatchError(
                path,
                f"{err.problem}; the file is corrupt or not the published one and was not used",
                _redownload_hint(info, remote, path),
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
                path,
                f"{err.problem}; the download was deleted and not used",
                f"Try again later, or download it by hand from {remote.urls[0]} and save it "
                f"as {path} ({_check_note(remote)}).",
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
    moved into place (replacing an entry of the same name).

    Raises:
        DataError: The archive is truncated, garbled, not a tar or zip archive, or holds
            an unsafe member path; nothing of it is left in ``directory``.
    """
    tmp = Path(tempfile.mkdtemp(dir=directory, prefix=".extract-"))
    try:
        with reading(archive, "a .tar.gz or .zip archive"):
            _unpack(archive, tmp)
        for entry in tmp.iterdir():
            target = directory / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _unpack(archive: Path, tmp: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)  # zipfile strips absolute paths and "..".
        return
    with tarfile.open(archive) as tf:
        if hasattr(tarfile, "data_filter"):
            try:
                tf.extractall(tmp, filter="data")
            except tarfile.FilterError as err:
                raise DataError(archive, f"holds an unsafe member path ({err})") from None
        else:  # pragma: no cover - Python without PEP 706 filters.
            for member in tf.getmembers():
                target = (tmp / member.name).resolve()
                if not target.is_relative_to(tmp.resolve()):
                    raise DataError(archive, f"holds an unsafe member path {member.name!r}")
            tf.extractall(tmp)


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
        DataError: The archive is bad (fails its checksum, cannot be extracted, or does
            not contain every member); the message says how to replace it.
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
    try:
        extract(archive, directory)
    except DataError as err:
        raise err.with_remedy(replace_hint(info, directory, archive)) from None
    found = [find_member(directory, m) for m in members]
    missing = [m for m, p in zip(members, found, strict=True) if p is None]
    if missing:
        raise DataError(
            archive,
            f"was extracted into {directory} but does not contain {missing}, so it is not "
            "the expected archive",
            _redownload_hint(
                info, info.files[0], archive, delete="it (and the files it extracted)"
            ),
        )
    return [p for p in found if p is not None]
