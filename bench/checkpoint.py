"""Checkpoint figures: save and load time for 100,000 one-element variables,
and the peak memory of loading hostile files (each in a fresh process).

    .venv/bin/python bench/checkpoint.py

Prints seconds and MB; not part of the tests (no timed assertions there).
"""

import json
import os
import subprocess
import sys
import tempfile
import time

HOSTILE = r'''
import hashlib, json, os, resource, struct, sys, zipfile, io
import numpy as np
import rmsprop
kind, path = sys.argv[1], sys.argv[2]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    rmsprop.load_optimizer(path)
    outcome = "loaded"
except rmsprop.CheckpointError as error:
    outcome = "CheckpointError: " + str(error)[:150]
except BaseException as error:
    outcome = type(error).__name__ + ": " + str(error)[:150]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"kind": kind, "bytes": os.path.getsize(path),
                  "peak_mb": after / 1024, "growth_mb": (after - before) / 1024,
                  "outcome": outcome}))
'''


def make_hostile(directory):
    import hashlib
    import io
    import struct
    import zipfile

    import numpy as np

    import rmsprop
    files = {}
    # Version 2: a valid header except that it declares a 1 TiB velocity.
    optimizer = rmsprop.RMSprop(learning_rate=0.1)
    optimizer.apply([np.ones(2, dtype="float32")], [rmsprop.Variable([1.0, 2.0], name="w")])
    path = os.path.join(directory, "good.ckpt")
    rmsprop.save_optimizer(optimizer, path)
    raw = open(path, "rb").read()
    size = struct.unpack("<Q", raw[24:32])[0]
    header = json.loads(raw[64:64 + size])
    header["state"]["variables"]["shapes"] = [[1 << 38]]
    body = json.dumps(header).encode()
    files["v2 header claiming 1 TiB"] = os.path.join(directory, "tib.ckpt")
    with open(files["v2 header claiming 1 TiB"], "wb") as handle:
        handle.write(struct.pack("<16sIIQ32s", rmsprop.checkpoint.MAGIC, 2, 0, len(body),
                                 hashlib.sha256(body).digest()) + body
                     + hashlib.sha256(b"").digest())
    # Version 1 (.npz): a value whose .npy header claims 1 TiB, no data.
    files["v1 npz claiming 1 TiB"] = os.path.join(directory, "tib.npz")
    with zipfile.ZipFile(files["v1 npz claiming 1 TiB"], "w") as archive:
        def put(name, array):
            buffer = io.BytesIO()
            np.save(buffer, array)
            archive.writestr(name + ".npy", buffer.getvalue())
        put("format", np.array("rmsprop-checkpoint/1"))
        put("class_name", np.array("RMSprop"))
        put("config", np.array(json.dumps(rmsprop.RMSprop().get_config())))
        specs = [{"name": "w", "shape": [1 << 38], "dtype": "float32"}]
        put("variable_specs", np.array(json.dumps(specs)))
        put("value_00000", np.array(1, dtype="int64"))
        put("value_00001", np.array(0.001, dtype="float32"))
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            buffer, {"descr": "<f4", "fortran_order": False, "shape": (1 << 38,)})
        archive.writestr("value_00002.npy", buffer.getvalue())
    # A 2 GB member deflated to about 2 MB, without the marker.
    files["zip bomb without marker"] = os.path.join(directory, "bomb.npz")
    zeros = bytes(1 << 20)
    with zipfile.ZipFile(files["zip bomb without marker"], "w",
                         compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("weights.npy", "w", force_zip64=True) as member:
            for _ in range(2048):
                member.write(zeros)
    return files


def many_variables(directory, count=100_000):
    import numpy as np

    import rmsprop
    rng = np.random.default_rng(0)
    variables = [rmsprop.Variable(rng.uniform(-1, 1, 1), name=f"v{i}") for i in range(count)]
    optimizer = rmsprop.RMSprop(learning_rate=0.01, momentum=0.5)
    optimizer.apply([rng.uniform(-1, 1, 1).astype("float32") for _ in range(count)], variables)
    path = os.path.join(directory, "many.ckpt")
    saves, loads = [], []
    for _ in range(3):
        start = time.perf_counter()
        rmsprop.save_optimizer(optimizer, path)
        saves.append(time.perf_counter() - start)
        start = time.perf_counter()
        loaded = rmsprop.load_optimizer(path)
        loads.append(time.perf_counter() - start)
    copies = [rmsprop.Variable(v.numpy(), name=v.name) for v in variables]
    start = time.perf_counter()
    loaded.build(copies)
    build = time.perf_counter() - start
    copies = [rmsprop.Variable(v.numpy(), name=v.name) for v in variables]
    start = time.perf_counter()
    rmsprop.RMSprop(learning_rate=0.01, momentum=0.5).build(copies)
    fresh = time.perf_counter() - start
    return {"variables": count, "file_mb": os.path.getsize(path) / 1e6,
            "save_s": min(saves), "load_s": min(loads), "load_over_save": min(loads) / min(saves),
            "build_with_state_s": build, "build_without_state_s": fresh}


def main():
    with tempfile.TemporaryDirectory() as directory:
        # Each hostile file is loaded in a fresh process started from a small one
        # (a child inherits its parent's peak resident size on Linux).
        hostile = subprocess.run(
            [sys.executable, "-c", "import sys, json; sys.path.insert(0, sys.argv[1]); "
             "import checkpoint as c; print(json.dumps(c.make_hostile(sys.argv[2])))",
             os.path.dirname(os.path.abspath(__file__)), directory],
            capture_output=True, text=True, check=True)
        for kind, path in json.loads(hostile.stdout).items():
            result = subprocess.run([sys.executable, "-c", HOSTILE, kind, path],
                                    capture_output=True, text=True, check=True)
            print(result.stdout.strip())
        print("100,000 one-element variables:", json.dumps(many_variables(directory)))


if __name__ == "__main__":
    main()
