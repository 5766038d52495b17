"""One file of a dataset, read or written: a read error is a DatasetError naming the file, a write is atomic.

    info = read_json(root / "meta/info.json")
    write_json_atomic(info, root / "meta/info.json")   # a reader sees the old file or the new one
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from wam.errors import DatasetError
from wam.runs.lock import HOST, writer_gone


def read_json(path: Path) -> dict:
    """A JSON object from a file, or a DatasetError naming it."""
    if not path.is_file():
        raise DatasetError(f"missing file: {path}")
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path} is not valid JSON ({exc}); the file is truncated or corrupt") from None
    if not isinstance(value, dict):
        raise DatasetError(f"{path}: expected a JSON object, found a {type(value).__name__}; the file is corrupt")
    return value


def read_parquet(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """A parquet table (only `columns` when given), or a DatasetError naming the file."""
    if not path.is_file():
        raise DatasetError(f"missing file: {path}")
    try:
        table = pq.read_table(path, columns=list(columns) if columns is not None else None)
        table.validate(full=True)  # e.g. text that is not UTF-8
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    return table


def column_to_numpy(table: pa.Table, name: str, shape: Sequence[int], where: Path) -> np.ndarray:
    """A (N, *shape) array from a scalar or (fixed-size) list column, checking its shape."""
    if name not in table.column_names:
        raise DatasetError(f"{where}: column '{name}' is missing")
    column = table.column(name).combine_chunks()
    n = len(column)
    if pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type) or pa.types.is_large_list(column.type):
        values = column.flatten()
        while pa.types.is_list(values.type) or pa.types.is_fixed_size_list(values.type):
            values = values.flatten()
        array = values.to_numpy(zero_copy_only=False)
    else:
        array = column.to_numpy(zero_copy_only=False)
    if array.dtype.kind not in "biuf":
        raise DatasetError(f"{where}: column '{name}' holds {column.type} values, not numbers")
    expected = int(np.prod(shape)) if len(shape) else 1
    if array.size != n * expected:
        raise DatasetError(
            f"{where}: column '{name}' holds {array.size // max(n, 1)} values a row, "
            f"info.json declares shape {list(shape)}"
        )
    shape = tuple(shape)
    return array.reshape((n,) if shape in ((), (1,)) else (n, *shape))


_TAG = r"(\d+)(?:@([A-Za-z0-9.-]+))?"  # <pid>@<host>; names from before the host was written hold <pid> alone
_TMP_TAG = re.compile(rf"\.tmp{_TAG}$|\.{_TAG}\.tmp$")  # <name>.tmp<tag> (atomic writes), <name>.<tag>.tmp (decodes)


def temporary_tag() -> str:
    """This process's mark in the names of its temporary files: `<pid>@<host>`, so that a sweep run on one host
    of a shared filesystem never deletes a file another host is still writing."""
    return f"{os.getpid()}@{HOST}"


def sweep_dead_temporaries(folder: Path, pattern: str) -> None:
    """Delete the temporary files in `folder` matching `pattern` whose writing process is gone: a write killed by
    SIGKILL or OOM never reaches its cleanup. A live process's file (this one's included), and another host's,
    are left alone."""
    for tmp in folder.glob(pattern):
        found = _TMP_TAG.search(tmp.name)
        if not found:
            continue
        pid, host = (found.group(1), found.group(2)) if found.group(1) else (found.group(3), found.group(4))
        if int(pid) != os.getpid() and writer_gone(pid, host):
            tmp.unlink(missing_ok=True)


def replace_via_temporary(path: Path, write) -> None:
    """`write(tmp)` into this process's `<name>.tmp<tag>`, then rename it over `path` (a dead writer's first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_dead_temporaries(path.parent, f"{path.name}.tmp*")
    tmp = path.with_name(path.name + f".tmp{temporary_tag()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(data: dict, path: Path) -> None:
    """Write JSON so that a reader sees the old file or the new one, never half of one."""
    replace_via_temporary(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2)))


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    """Write a parquet file atomically (temp file, then rename)."""
    replace_via_temporary(path, lambda tmp: pq.write_table(table, tmp))
