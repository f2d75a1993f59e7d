#!/usr/bin/env python3
"""Rebuild an exported Engram attention model in plain PyTorch and check it against Engram's logits.

Reads only the export directory: config.json (architecture and conventions), model.safetensors (the
weights) and prompt_logits.safetensors (a prompt's token ids and the logits Engram computed over it).
No Engram code is used, so this is a check that config.json's conventions are enough to port a model:

    go run ./cmd/train -config configs/quickstart.yaml
    go run ./cmd/export -run runs/quickstart                       # weights + config.json
    go run ./cmd/export -run runs/quickstart -state -ids 1,2,3,4   # + prompt_logits.safetensors
    /usr/bin/python3 docs/rebuild_quickstart.py runs/quickstart/export

Covers the layer types the quickstart and the attention baselines use (attention, swa), the SwiGLU MLP,
tied or separate heads. Exits 1 when the largest relative difference exceeds the tolerance (1e-5).
"""

import json
import math
import struct
import sys

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    """A safetensors file as {name: numpy array}: an 8-byte little-endian header size, a JSON header
    of dtype / shape / data_offsets per tensor, then the raw little-endian data."""
    with open(path, "rb") as f:
        body = f.read()
    (size,) = struct.unpack("<Q", body[:8])
    header = json.loads(body[8:8 + size])
    data = body[8 + size:]
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] == "BF16":
            raw = np.frombuffer(data[entry["data_offsets"][0]:entry["data_offsets"][1]], dtype=np.uint16)
            values = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            begin, end = entry["data_offsets"]
            values = np.frombuffer(data[begin:end], dtype=DTYPES[entry["dtype"]])
        out[name] = values.reshape(entry["shape"]).copy()
    return out


def rms_norm(x, weight, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * weight


def short_conv(x, weight):
    """Causal depthwise conv over time: x [T, C], weight [K, C]; y_t = sum_j w[j] x_{t-K+1+j}."""
    kernel = weight.shape[0]
    padded = torch.cat([x.new_zeros(kernel - 1, x.shape[1]), x], 0)
    return sum(weight[j] * padded[j:j + x.shape[0]] for j in range(kernel))


def rope(x, base):
    """Rotate-half RoPE on x [T, H, Dh] at positions 0..T-1: pairs (x_i, x_{i+Dh/2})."""
    time, _, head_dim = x.shape
    half = head_dim // 2
    inv_freq = torch.tensor([base ** (-2 * i / head_dim) for i in range(half)], dtype=torch.float64)
    angles = torch.arange(time, dtype=torch.float64)[:, None] * inv_freq[None, :]
    cos, sin = angles.cos().to(x.dtype)[:, None, :], angles.sin().to(x.dtype)[:, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


def attention(x, w, prefix, cfg, d_model):
    heads = cfg["heads"]
    head_dim = cfg.get("head_dim") or d_model // heads
    time = x.shape[0]
    qkv = []
    for name in ("q", "k", "v"):
        y = x @ w[f"{prefix}.{name}.weight"]  # dense weights are [in, out]
        if cfg.get("short_conv", 0) > 0:
            y = short_conv(y, w[f"{prefix}.{name}_conv.weight"])
        qkv.append(y.reshape(time, heads, head_dim))  # channel h*head_dim + d
    q, k, v = qkv
    q, k = rope(q, cfg["rope_base"]), rope(k, cfg["rope_base"])
    scores = torch.einsum("thd,shd->hts", q, k) / math.sqrt(head_dim)
    t = torch.arange(time)
    visible = t[None, :] <= t[:, None]
    if cfg.get("window", 0) > 0:
        visible &= t[None, :] > t[:, None] - cfg["window"]
    scores = scores.masked_fill(~visible, float("-inf"))
    out = torch.einsum("hts,shd->thd", scores.softmax(-1), v).reshape(time, heads * head_dim)
    return out @ w[f"{prefix}.output.weight"]


def mlp_width(arch):
    hidden = arch.get("mlp_hidden", 0)
    if hidden == 0:  # floor(8/3 d_model) rounded up to a multiple of 8
        hidden = (8 * arch["d_model"] // 3 + 7) // 8 * 8
    return hidden


def logits(arch, w, ids):
    d_model, eps = arch["d_model"], arch["norm_eps"]
    h = w["embed.embeddings"][ids]
    sections = {"attention": "attention", "swa": "sliding_window"}
    for i, layer in enumerate(arch["layers"]):
        kind = layer if isinstance(layer, str) else layer["type"]
        if kind not in sections:
            sys.exit(f"layer {i}: type {kind!r} is not covered by this script (attention, swa)")
        cfg = dict(arch[sections[kind]])
        if not isinstance(layer, str):
            cfg.update(layer.get(sections[kind], {}))
        scope = kind if isinstance(layer, str) else layer.get("scope", kind)
        prefix = f"layer_{i}"
        h = h + attention(rms_norm(h, w[f"{prefix}.norm_mixer.weight"], eps), w, f"{prefix}.{scope}", cfg, d_model)
        if mlp_width(arch) > 0:
            x = rms_norm(h, w[f"{prefix}.norm_mlp.weight"], eps)
            gate, up = x @ w[f"{prefix}.mlp.gate.weight"], x @ w[f"{prefix}.mlp.up.weight"]
            h = h + (torch.nn.functional.silu(gate) * up) @ w[f"{prefix}.mlp.down.weight"]
    h = rms_norm(h, w["final_norm.weight"], eps)
    head = w["embed.embeddings"].T if arch.get("tie_embeddings") else w["head.weight"]
    return h @ head


def main():
    export_dir = sys.argv[1] if len(sys.argv) > 1 else "runs/quickstart/export"
    with open(f"{export_dir}/config.json") as f:
        config = json.load(f)
    weights = {name: torch.from_numpy(a).double() for name, a in read_safetensors(f"{export_dir}/{config['weights']}").items()}
    prompt = read_safetensors(f"{export_dir}/prompt_logits.safetensors")
    ids = torch.from_numpy(prompt["ids"].astype(np.int64))
    want = torch.from_numpy(prompt["logits"]).double()
    with torch.no_grad():
        got = logits(config["architecture"], weights, ids)
    rel = ((got - want).abs().max() / want.abs().max()).item()
    print(f"{len(ids)} tokens, vocab {want.shape[1]}: max |torch - engram| = {(got - want).abs().max().item():.3e}, "
          f"relative to max |logit| {want.abs().max().item():.3f}: {rel:.3e}; same argmax at {(got.argmax(-1) == want.argmax(-1)).sum().item()}/{len(ids)} tokens")
    if rel > 1e-5:
        print("FAIL: the rebuilt model does not match Engram's logits within 1e-5")
        sys.exit(1)
    print("OK: matches within 1e-5")


if __name__ == "__main__":
    main()
