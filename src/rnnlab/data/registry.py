"""Where dataset files come from: one registry of names, sources and checksums.

Each dataset module registers a :class:`DatasetInfo` listing its files with their canonical URLs
and sha256. :func:`fetch` finds a file in this order:

1. the explicit ``data_dir`` (``--data-dir`` on the command line), then ``$RNNLAB_DATA_DIR``:
   ``DIR/<dataset>/<file>`` or ``DIR/<file>``;
2. the cache, ``$RNNLAB_CACHE_DIR`` or ``~/.cache/rnnlab/<dataset>/<file>``;
3. a download from the canonical URLs into the cache, verified against the checksum before it is
   moved into place (so a failed download never leaves a half file behind).

Every file found locally is checked against its sha256 too; a mismatch is a ``DataError``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from rnnlab.errors import DataError, DatasetNotFound


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name, where to download it, and its accepted sha256 digests."""

    name: str
    urls: tuple[str, ...]
    sha256: tuple[str, ...]


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset: its name (also its folder name), files, citation and licence note."""

    name: str
    files: tuple[RemoteFile, ...]
    citation: str = ""
    license: str = ""
    description: str = ""
    _by_name: dict[str, RemoteFile] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {f.name: f for f in self.files})

    def file(self, name: str) -> RemoteFile:
        try:
            return self._by_name[name]
        except KeyError:
            raise DataError(f"dataset {self.name!r} has no file {name!r}") from None


_DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    """Add a dataset to the registry (done once by the module that loads it)."""
    _DATASETS[info.name] = info
    return info


def dataset_info(name: str) -> DatasetInfo:
    try:
        return _DATASETS[name]
    except KeyError:
        raise DataError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(_DATASETS))}"
        ) from None


def registered_datasets() -> list[str]:
    return sorted(_DATASETS)


def cache_dir() -> Path:
    """The download cache: ``$RNNLAB_CACHE_DIR`` or ``~/.cache/rnnlab``."""
    return Path(os.environ.get("RNNLAB_CACHE_DIR", Path.home() / ".cache" / "rnnlab"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified(path: Path, remote: RemoteFile) -> Path:
    if sha256_of(path) not in remote.sha256:
        raise DataError(
            f"{path} does not match the published checksum of {remote.name}; "
            "delete it or point --data-dir at a correct copy"
        )
    return path


def _local_dirs(data_dir: str | Path | None) -> list[Path]:
    dirs = [Path(data_dir)] if data_dir else []
    if os.environ.get("RNNLAB_DATA_DIR"):
        dirs.append(Path(os.environ["RNNLAB_DATA_DIR"]))
    return dirs


def fetch(
    dataset: str, filename: str, data_dir: str | Path | None = None, download: bool = True
) -> Path:
    """The local path of ``filename`` of ``dataset``, found, cached or downloaded; verified."""
    info = dataset_info(dataset)
    remote = info.file(filename)
    for base in _local_dirs(data_dir):
        for candidate in (base / dataset / filename, base / filename):
            if candidate.is_file():
                return _verified(candidate, remote)
    cached = cache_dir() / dataset / filename
    if cached.is_file():
        return _verified(cached, remote)
    if not download:
        raise DatasetNotFound(
            f"{dataset}/{filename} is not available locally; pass --data-dir (or set "
            "RNNLAB_DATA_DIR) to a folder holding it, or allow downloading",
            dataset,
            filename,
        )
    return _download(dataset, remote, cached)


def _download(dataset: str, remote: RemoteFile, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in remote.urls:
        handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{remote.name}.")
        os.close(handle)
        try:
            urllib.request.urlretrieve(url, tmp)  # noqa: S310 - canonical https sources
            if sha256_of(Path(tmp)) not in remote.sha256:
                errors.append(f"{url}: checksum mismatch")
                continue
            os.replace(tmp, target)
            return target
        except OSError as error:
            errors.append(f"{url}: {error}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise DatasetNotFound(
        f"could not download {remote.name} ({'; '.join(errors)}); download it by hand and pass "
        "--data-dir (or set RNNLAB_DATA_DIR) to its folder",
        dataset,
        remote.name,
    )
