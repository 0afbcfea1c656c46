"""Read the parameter table of a pfsspec HDF5 file (a pandas frame written by PyTables) with h5py, never unpickling.

``pd.read_hdf`` unpickles: PyTables keeps pandas' metadata (column names of each block) as pickled attributes,
and pandas' fixed format stores object columns as pickles, so a crafted file could run code. Here the column
names are decoded by an unpickler that may build only strings, numbers, lists, tuples and dicts (no class, no
function), and pickled object columns are refused. Both pandas layouts are read:

- ``table`` (what pfsspec writes): one compound dataset ``{key}/table`` with ``index``, blocks
  ``values_block_{i}`` (column names in the attribute ``values_block_{i}_kind``) and data columns;
- ``fixed``: ``{key}/block{i}_values`` with names in ``{key}/block{i}_items``; object blocks are refused.
"""
import io
import pickle

import h5py
import numpy as np
import pandas as pd

from .errors import DistillError


class _PlainUnpickler(pickle.Unpickler):
    """Builds only the pickle protocol's own types: any class or function reference is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused a persistent id")


def plain_unpickle(data: bytes):
    """Decode pandas' pickled metadata (lists of column names) without importing or calling anything."""
    return _PlainUnpickler(io.BytesIO(bytes(data))).load()


def _names(attrs, key: str, where: str) -> list:
    """Column names in a pickled attribute: a list of names, or ``non_index_axes`` = [(axis, names), ...]."""
    try:
        names = plain_unpickle(attrs[key])
        if key == "non_index_axes":
            names = [n for _, axis in names for n in axis]
    except (KeyError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise DistillError(f"{where}: cannot read the column names in attribute {key!r} ({e})") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DistillError(f"{where}: attribute {key!r} does not hold a list of column names")
    return names


def _column(values: np.ndarray) -> np.ndarray:
    return np.char.decode(values, "utf-8").astype(object) if values.dtype.kind == "S" else values


def read_params(path, key: str) -> pd.DataFrame:
    """The frame stored at ``key`` of an HDF5 file, read without unpickling; one-line errors name file and key."""
    where = f"{path}: '{key}'"
    with h5py.File(path, "r") as f:
        node = f[key]
        kind = node.attrs.get("pandas_type", b"").decode() if isinstance(node, h5py.Group) else ""
        if kind == "frame_table":
            return _read_table(node, where)
        if kind == "frame":
            return _read_fixed(node, where)
    raise DistillError(f"{where} is not a pandas frame (pandas_type {kind or 'missing'}); write it with "
                       "DataFrame.to_hdf(..., format='table')")


def _read_table(node, where: str) -> pd.DataFrame:
    if "table" not in node:
        raise DistillError(f"{where}: no 'table' dataset inside the frame")
    table = node["table"]
    records = table[()]
    columns = {}
    for field in records.dtype.names:
        if field == "index":
            continue
        values = records[field]
        if field.startswith("values_block_"):
            meta = table.attrs.get(f"{field}_meta", b"N.")
            if meta not in (b"N.", b"str"):
                raise DistillError(f"{where}: column block {field} has pandas metadata {meta!r}; store plain numbers "
                                   "or strings")
            names = _names(table.attrs, f"{field}_kind", where)
            values = values.reshape(len(records), -1)
            if values.shape[1] != len(names):
                raise DistillError(f"{where}: block {field} holds {values.shape[1]} columns but names {len(names)}")
            columns |= {name: _column(values[:, i]) for i, name in enumerate(names)}
        else:
            columns[field] = _column(values)
    order = _names(node.attrs, "non_index_axes", where) if "non_index_axes" in node.attrs else list(columns)
    return pd.DataFrame({name: columns[name] for name in order if name in columns})


def _values(node, where: str) -> np.ndarray:
    """An array of the fixed format; PyTables stores an empty one as a placeholder element and its real shape (a
    pickled tuple) in the attribute ``shape``."""
    if "shape" not in node.attrs:
        return node[()]
    try:
        shape = plain_unpickle(node.attrs["shape"])
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise DistillError(f"{where}: cannot read the shape of {node.name} ({e})") from None
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape) or all(shape):
        raise DistillError(f"{where}: {node.name} has the shape attribute {shape!r}, not that of an empty array")
    return np.empty(shape, dtype=node.dtype)


def _read_fixed(node, where: str) -> pd.DataFrame:
    columns, i = {}, 0
    while f"block{i}_values" in node:
        values, items = node[f"block{i}_values"], [n.decode() for n in node[f"block{i}_items"][()]]
        if values.attrs.get("CLASS") == b"VLARRAY" or values.dtype.kind not in "biufS":
            raise DistillError(f"{where}: column(s) {', '.join(items)} are stored as pickled objects (pandas fixed "
                               "format), which could run code when read; write the table with format='table'")
        data = _values(values, where)
        data = data if values.attrs.get("transposed") else data.T
        columns |= {name: _column(data[:, j]) for j, name in enumerate(items)}
        i += 1
    order = [n.decode() for n in node["axis0"][()]] if "axis0" in node else list(columns)
    return pd.DataFrame({name: columns[name] for name in order if name in columns})
