"""Minimal safetensors reader/writer (the format: 8-byte little-endian header
length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str:
str}}, then the raw little-endian tensor bytes). Debian ships no
python3-safetensors, so the tools write the format themselves."""

import json
import struct

import numpy as np
import torch

_DT = {
    torch.float16: ("F16", np.float16),
    torch.float32: ("F32", np.float32),
    torch.bfloat16: ("BF16", None),
    torch.int64: ("I64", np.int64),
    torch.int32: ("I32", np.int32),
}
_NP = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def save(tensors, path, metadata=None):
    """tensors: dict name -> torch tensor. Keys are written sorted, data packed
    in the same order, header padded with spaces to a multiple of 8 bytes."""
    header = {}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _DT or _DT[t.dtype][1] is None:
            raise TypeError(f"{name}: unsupported dtype {t.dtype}")
        code, npdt = _DT[t.dtype]
        data = t.numpy().astype(npdt, copy=False).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path, dtype=None):
    """Returns (dict name -> torch tensor, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        arr = np.frombuffer(raw[base + a:base + b], dtype=_NP[info["dtype"]]).reshape(info["shape"])
        t = torch.from_numpy(arr.copy())
        if dtype is not None:
            t = t.to(dtype)
        out[name] = t
    return out, meta
