"""PyTorch CPU reference timings for issue 14's table, to run in the same sitting as `make bench`.

Optional (the project never needs Python): Debian's python3-torch (1.13) with OpenBLAS
(apt-get install python3-torch libopenblas0-pthread; with Debian's reference BLAS alone the products
run about 6x slower). `make bench-pytorch` runs it as

    OPENBLAS_NUM_THREADS=2 MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 \
        /usr/bin/python3 docs/bench/pytorch_reference.py

Rows (B=8, H=4, T=1024, d_k=d_v=64, chunk 64, float32, 2 threads):
- the gated delta rule in flash-linear-attention's plain-PyTorch chunked form (the structure of its
  naive_chunk_gated_delta_rule: the WY factors with (I + A)^-1 built row by row, then a loop over
  chunks), forward and forward+backward;
- causal softmax attention written out (scores, mask, softmax, product), forward+backward.
glibc's malloc is told never to return memory to the system (the two thresholds above), otherwise
PyTorch's large temporaries are mmap'ed and unmapped on every call and the samples scatter.
The equations are the ones deltanet/chunk.go documents; this file is an independent rewrite.
"""
import statistics
import sys
import time

import torch

B, H, T, D, C = 8, 4, 1024, 64, 64


def chunk_gated_delta_rule(q, k, v, beta, g, chunk):
    """q, k, v [B, H, T, D], beta, g [B, H, T] -> o [B, H, T, D], final state [B, H, D, D]."""
    b, h, t, dk = q.shape
    dv = v.shape[-1]
    n = t // chunk
    q = q * dk ** -0.5
    kb = k * beta[..., None]
    vb = v * beta[..., None]
    split = lambda x: x.reshape(b, h, n, chunk, x.shape[-1])
    q, k, kb, vb = split(q), split(k), split(kb), split(vb)
    gc = g.reshape(b, h, n, chunk).cumsum(-1)
    upper = torch.triu(torch.ones(chunk, chunk, dtype=torch.bool), 0)
    strictly_upper = torch.triu(torch.ones(chunk, chunk, dtype=torch.bool), 1)
    gamma = (gc[..., :, None] - gc[..., None, :]).tril().exp().tril()
    a = -((kb @ k.transpose(-1, -2)) * gamma).masked_fill(upper, 0)
    for r in range(1, chunk):  # forward substitution, one row of (I + A)^-1 at a time
        a[..., r, :r] = a[..., r, :r].clone() + (a[..., r, :r, None].clone() * a[..., :r, :r].clone()).sum(-2)
    tinv = a + torch.eye(chunk)
    u = tinv @ vb
    w = tinv @ (kb * gc.exp()[..., None])
    s = q.new_zeros(b, h, dk, dv)
    outs = []
    for i in range(n):
        scores = (q[:, :, i] @ k[:, :, i].transpose(-1, -2) * gamma[:, :, i]).masked_fill(strictly_upper, 0)
        corrected = u[:, :, i] - w[:, :, i] @ s
        outs.append((q[:, :, i] * gc[:, :, i, :, None].exp()) @ s + scores @ corrected)
        last = gc[:, :, i, -1]
        s = s * last[..., None, None].exp() + \
            (k[:, :, i] * (last[..., None] - gc[:, :, i]).exp()[..., None]).transpose(-1, -2) @ corrected
    return torch.stack(outs, 2).reshape(b, h, t, dv), s


def causal_attention(q, k, v):
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    mask = torch.triu(torch.ones(q.shape[-2], q.shape[-2], dtype=torch.bool), 1)
    return torch.softmax(scores.masked_fill(mask, float("-inf")), -1) @ v


def inputs(grad):
    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(B, H, T, D), dim=-1)
    k = torch.nn.functional.normalize(torch.randn(B, H, T, D), dim=-1)
    v = torch.randn(B, H, T, D)
    beta = torch.rand(B, H, T).sigmoid()
    g = torch.nn.functional.logsigmoid(torch.rand(B, H, T))
    xs = [q, k, v, beta, g]
    for x in xs:
        x.requires_grad_(grad)
    return xs


def time_row(name, fn, grad, repeats):
    xs = inputs(grad)
    samples = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        if grad:
            out = fn(*xs)
            loss = sum(o.sum() for o in (out if isinstance(out, tuple) else (out,)))
            loss.backward()
            for x in xs:
                x.grad = None
        else:
            with torch.no_grad():
                fn(*xs)
        if i > 0:  # the first call warms the allocator
            samples.append(time.perf_counter() - start)
    best, median = min(samples), statistics.median(samples)
    print(f"{name:45s} median {B * T / median:9.0f} tok/s   best {B * T / best:9.0f} tok/s   ({repeats} runs)")
    sys.stdout.flush()


def main():
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, B={B} H={H} T={T} d={D} chunk={C}")
    gdn = lambda q, k, v, beta, g: chunk_gated_delta_rule(q, k, v, beta, g, C)
    attention = lambda q, k, v, beta, g: causal_attention(q, k, v)
    time_row("gated delta rule chunk op, fwd", gdn, False, 10)
    time_row("gated delta rule chunk op, fwd+bwd", gdn, True, 5)
    time_row("causal softmax attention, fwd+bwd", attention, True, 5)


if __name__ == "__main__":
    main()
