#!/usr/bin/env python3
"""pack_orbax.py OUT PARAMS_DIR — packs an Orbax checkpoint directory (every file under it) into
fuzz_orbax's input format: records [u16le name length][name][u32le data length][data]. Orbax's
own metadata files (_METADATA, _sharding, array_metadatas/, ...), which pi0.c does not read, are
left out.
The seeds in fuzz/corpus/orbax/ were packed from checkpoints written by the real orbax-checkpoint
(tests/orbax/gen_orbax.py on `pi0 gen-model --config tiny` models, and a two-array tree saved
with a small chunk_byte_size for multi-chunk arrays). Stdlib only."""
import os, struct, sys

out, root = sys.argv[1], sys.argv[2]
recs = b""
for d, _, files in sorted(os.walk(root)):
    if "array_metadatas" in d:
        continue
    for f in sorted(files):
        if f.startswith("_"):
            continue
        p = os.path.join(d, f)
        name = os.path.relpath(p, root).encode()
        data = open(p, "rb").read()
        recs += struct.pack("<H", len(name)) + name + struct.pack("<I", len(data)) + data
open(out, "wb").write(recs)
print(f"{out}: {len(recs)} bytes")
