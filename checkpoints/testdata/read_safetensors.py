#!/usr/bin/env python3
"""Reads a safetensors file with Python's standard library only (numpy is optional and unused), as a
check that Engram's writer follows the format: an 8-byte little-endian header length, a JSON header of
{name: {dtype, shape, data_offsets}} plus "__metadata__", then a buffer the tensors tile exactly.

    python3 checkpoints/testdata/read_safetensors.py FILE [OTHER]

Prints every tensor (dtype, shape, offsets, first values, RMS). With OTHER (e.g. the bfloat16 export of
the same model), prints the largest relative RMS difference between tensors of the same name.
"""
import json
import math
import struct
import sys

FORMATS = {"F64": "d", "F32": "f", "I64": "q", "I32": "i"}
SIZES = {"F64": 8, "F32": 4, "BF16": 2, "I64": 8, "I32": 4}


def read(path):
    with open(path, "rb") as f:
        body = f.read()
    (n,) = struct.unpack("<Q", body[:8])
    header = json.loads(body[8:8 + n].decode("utf-8"))
    assert body[8:9] == b"{", "header must start with '{'"
    assert (8 + n) % 8 == 0, "buffer not 8-aligned"
    buffer = body[8 + n:]
    metadata = header.pop("__metadata__", {})
    assert all(isinstance(v, str) for v in metadata.values()), "metadata values must be strings"
    tensors, spans = {}, []
    for name, info in header.items():
        dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        count = math.prod(shape)
        assert end - begin == count * SIZES[dtype], f"{name}: offsets do not match shape"
        assert begin % SIZES[dtype] == 0, f"{name}: not aligned to its element size"
        raw = buffer[begin:end]
        if dtype == "BF16":
            values = [struct.unpack("<f", b"\x00\x00" + raw[2 * i:2 * i + 2])[0] for i in range(count)]
        else:
            values = list(struct.unpack("<%d%s" % (count, FORMATS[dtype]), raw))
        tensors[name] = (dtype, shape, begin, end, values)
        spans.append((begin, end))
    covered = 0
    for begin, end in sorted(spans):
        assert begin == covered, f"gap or overlap at byte {covered}"
        covered = end
    assert covered == len(buffer), "trailing bytes in the buffer"
    return metadata, tensors, n


def rms(values):
    return math.sqrt(sum(v * v for v in values) / max(len(values), 1))


def main():
    metadata, tensors, n = read(sys.argv[1])
    print(f"{sys.argv[1]}: header {n} bytes, {len(tensors)} tensors, metadata keys {sorted(metadata)}")
    for name, (dtype, shape, begin, end, values) in sorted(tensors.items(), key=lambda kv: kv[1][2]):
        head = ", ".join("%.6g" % v for v in values[:3])
        print(f"  {name:40s} {dtype:4s} {str(shape):16s} [{begin}, {end})  [{head}{', ...' if len(values) > 3 else ''}]  rms {rms(values):.6g}")
    if len(sys.argv) > 2:
        _, other, _ = read(sys.argv[2])
        worst = max((rms([a - b for a, b in zip(v[4], other[k][4])]) / max(rms(v[4]), 1e-30), k)
                    for k, v in tensors.items())
        print(f"largest relative RMS difference vs {sys.argv[2]}: {worst[0]:.3g} ({worst[1]})")


if __name__ == "__main__":
    main()
