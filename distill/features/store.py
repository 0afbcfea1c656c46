"""Extracted features on disk: one Parquet file per layer plus ``manifest.json``.

Each ``{layer}.parquet`` has one row per spectrum, in dataset order, split after
split: ``id`` (row in its split file), ``split``, the label columns, and per
direction ``{dir}_segmean`` (C x Ks segment means, channel-major) and ``{dir}_max``
(C channel maxima) as fixed-size float32 lists. ``denoised.parquet`` (optional)
holds the teacher's denoised flux.
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DistillError

MANIFEST = "manifest.json"


def _list_column(array: np.ndarray) -> pa.FixedSizeListArray:
    flat = np.ascontiguousarray(array, dtype=np.float32).reshape(len(array), -1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1])


def _list_values(column: pa.ChunkedArray, shape) -> np.ndarray:
    return column.combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(-1, *shape)


class LayerWriter:
    """Streams row batches of one layer to ``{layer}.parquet`` (one row group per batch)."""

    def __init__(self, path):
        self.path, self.writer = Path(path), None

    def write(self, meta: pd.DataFrame, arrays: dict):
        columns = {c: pa.array(meta[c].to_numpy()) for c in meta.columns}
        columns |= {name: _list_column(a) for name, a in arrays.items()}
        table = pa.table(columns)
        if self.writer is None:
            # dictionary encoding of float columns costs 2.6x the write time and saves nothing
            self.writer = pq.ParquetWriter(self.path, table.schema, use_dictionary=["split"])
        self.writer.write_table(table)

    def close(self):
        if self.writer is not None:
            self.writer.close()


def write_manifest(directory, manifest: dict):
    (Path(directory) / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))


def read_manifest(directory) -> dict:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise DistillError(f"{directory}: no {MANIFEST}; not the output of an extract run")
    return json.loads(path.read_text())


def read_layer(directory, layer: str, direction: str, manifest: dict) -> tuple:
    """(meta DataFrame, segment means (N, C, Ks), maxima (N, C)) of one layer and direction.

    ``direction="both"`` concatenates fwd and bwd on channels.
    """
    info = manifest["layers"].get(layer)
    if info is None:
        raise DistillError(f"layer {layer!r} was not extracted; this extract run has {', '.join(manifest['layers'])}")
    wanted = ["fwd", "bwd"] if direction == "both" else [direction]
    missing = [d for d in wanted if d not in manifest["directions"]]
    if missing:
        raise DistillError(f"direction {direction!r} needs {missing} but the extract run stored "
                           f"{manifest['directions']}")
    table = pq.read_table(Path(directory) / f"{layer}.parquet")
    c, ks = info["channels"], info["segments"]
    seg = np.concatenate([_list_values(table[f"{d}_segmean"], (c, ks)) for d in wanted], axis=1)
    mx = np.concatenate([_list_values(table[f"{d}_max"], (c,)) for d in wanted], axis=1)
    meta = table.select([n for n in table.column_names if not n.endswith(("_segmean", "_max"))]).to_pandas()
    return meta, seg, mx


def read_denoised(directory) -> tuple:
    """(meta, denoised flux (N, P)) written when extract ran with denoised=true."""
    path = Path(directory) / "denoised.parquet"
    if not path.is_file():
        raise DistillError(f"{directory}: no denoised flux; rerun extract with -P denoised=true")
    table = pq.read_table(path)
    flux = table["denoised"].combine_chunks()
    meta = table.select([n for n in table.column_names if n != "denoised"]).to_pandas()
    return meta, _list_values(table["denoised"], (flux.type.list_size,))
