"""Files of a sweep, on a local folder or any filesystem pyarrow understands (s3://, gs://).

Sweeps live wherever ``--storage`` points, and every node of a cluster must reach them (Ray
Train writes checkpoints there), so the driver, the trials and the listing read and write them
through these few helpers instead of `open`.
"""

from __future__ import annotations

from pathlib import Path


def filesystem_and_path(uri: str):
    """``(pyarrow filesystem, path on it)`` for a local path (made absolute) or a URI."""
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(uri if "://" in uri else str(Path(uri).expanduser().resolve()))


def write_bytes(uri: str, data: bytes) -> None:
    """Write a file, creating its folder. Local files are written to a temporary name and
    renamed, so a reader (or a killed writer) never sees half a file."""
    if "://" not in uri:
        path = Path(uri).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return
    filesystem, path = filesystem_and_path(uri)
    filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with filesystem.open_output_stream(path) as out:  # object stores replace an object atomically
        out.write(data)


def read_bytes(uri: str) -> bytes:
    filesystem, path = filesystem_and_path(uri)
    with filesystem.open_input_stream(path) as stream:
        return stream.read()


def kind(uri: str) -> str:
    """"file", "dir" or "missing"."""
    import pyarrow.fs

    filesystem, path = filesystem_and_path(uri)
    found = filesystem.get_file_info(path).type
    return {pyarrow.fs.FileType.File: "file", pyarrow.fs.FileType.Directory: "dir"}.get(found, "missing")


def subfolders(uri: str) -> list[str]:
    """Names of the folders directly inside ``uri`` (sorted; empty when it is not a folder)."""
    import pyarrow.fs

    if kind(uri) != "dir":
        return []
    filesystem, path = filesystem_and_path(uri)
    infos = filesystem.get_file_info(pyarrow.fs.FileSelector(path, recursive=False))
    return sorted(i.base_name for i in infos if i.type == pyarrow.fs.FileType.Directory)


def absolute(uri: str) -> str:
    """A local path made absolute (so Ray processes started elsewhere find it); URIs as given."""
    return uri if "://" in uri else str(Path(uri).expanduser().resolve())
