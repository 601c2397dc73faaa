#!/usr/bin/env python3
"""zarr_edge.py OUT_DIR — zarr arrays that Orbax's own writes do not produce but the format
allows, written by the real tensorstore into one OCDBT database (OUT_DIR/db): chunks that do not
divide the shape (partial edge chunks), dimension_separator "/", no compressor, a 0-d array, and
float32 / bfloat16 / float16. Each array's expected bytes (C order, little-endian) go to
OUT_DIR/<name>.bin for tests/orbax_read to be compared against. Exit 77 without the packages."""
import os
import sys

try:
    import ml_dtypes
    import numpy as np
    import tensorstore as ts
except ImportError as ex:  # pragma: no cover
    print(f"SKIP: {ex}", file=sys.stderr)
    sys.exit(77)

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
ctx = ts.Context()
kv = {"driver": "ocdbt", "base": "file://" + os.path.abspath(os.path.join(out, "db"))}
zstd = {"id": "zstd", "level": 3}
cases = [
    ("edge_f32", "<f4", np.float32, [10, 7], [4, 5], zstd, "."),
    ("edge_bf16_slash", "bfloat16", ml_dtypes.bfloat16, [3, 5, 7], [2, 2, 3], zstd, "/"),
    ("raw_f16", "<f2", np.float16, [6, 3], [4, 2], None, "."),
    ("scalar_f32", "<f4", np.float32, [], [], zstd, "."),
    ("one_chunk_bf16", "bfloat16", ml_dtypes.bfloat16, [4, 6], [4, 6], zstd, "."),
]
rng = np.random.default_rng(0)
for name, zdt, npdt, shape, chunks, comp, sep in cases:
    data = rng.standard_normal(shape).astype(np.float32).astype(npdt)
    meta = {"shape": shape, "chunks": chunks, "dtype": zdt, "compressor": comp, "dimension_separator": sep}
    arr = ts.open({"driver": "zarr", "kvstore": kv, "path": name, "metadata": meta}, create=True, context=ctx).result()
    arr.write(data).result()
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        f.write(np.ascontiguousarray(data).tobytes())
print(f"zarr_edge: {len(cases)} arrays in {out}/db", file=sys.stderr)
