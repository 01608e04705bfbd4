"""FA4's SM90 kernels (AOT build from /tmp/fa4aot, ctypes + torch): correctness spot check, then timing of the
benchmark workloads (bf16, 32/8 heads, D=128), forward and forward+backward. Not part of the repo."""
import math, os, statistics, sys, time
import numpy as np
import torch
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "fa4"))
import fa4_ctypes as fa4
from benchmarks import workloads as W

dev = torch.device("cuda")
torch.manual_seed(0)

def ref(q, k, v, causal, cu=None):
    """float32 reference, packed [t, h, d] per sequence (cu) or dense [b, s, h, d]."""
    def one(q, k, v):  # [s, h, d]
        h, hk = q.shape[1], k.shape[1]
        k = k.repeat_interleave(h // hk, dim=1); v = v.repeat_interleave(h // hk, dim=1)
        s = torch.einsum("qhd,khd->hqk", q.float(), k.float()) / math.sqrt(q.shape[-1])
        if causal:
            sq, sk = q.shape[0], k.shape[0]
            mask = torch.arange(sk, device=q.device)[None, :] > torch.arange(sq, device=q.device)[:, None] + sk - sq
            s = s.masked_fill(mask, -float("inf"))
        p = torch.softmax(s, -1)
        return torch.einsum("hqk,khd->qhd", p, v.float())
    if cu is None:
        return torch.stack([one(q[i], k[i], v[i]) for i in range(q.shape[0])])
    return torch.cat([one(q[a:b], k[a:b], v[a:b]) for a, b in zip(cu[:-1], cu[1:])])

def rel(a, b):
    return (torch.linalg.norm((a.float() - b.float()).flatten()) / torch.linalg.norm(b.float().flatten())).item()

def check():
    for causal in (False, True):
        b, s, h, hk = 2, 777, 8, 2
        q, k, v = (torch.randn(b, s, n, 128, device=dev, dtype=torch.bfloat16, requires_grad=True) for n in (h, hk, hk))
        o, lse = fa4.fwd(q.detach(), k.detach(), v.detach(), causal=causal)
        r = ref(q, k, v, causal)
        do = torch.randn_like(o)
        dq, dk, dv = fa4.bwd(do, q.detach(), k.detach(), v.detach(), o, lse, causal=causal)
        gq, gk, gv = torch.autograd.grad(r, (q, k, v), do.float())
        print(f"check dense causal={causal}: out {rel(o, r):.2e} dq {rel(dq, gq):.2e} dk {rel(dk, gk):.2e} dv {rel(dv, gv):.2e}")
    lens = [1, 300, 0, 129, 1000, 64]
    cu = [0] + list(np.cumsum(lens))
    t, h, hk = cu[-1], 8, 2
    q, k, v = (torch.randn(t, n, 128, device=dev, dtype=torch.bfloat16, requires_grad=True) for n in (h, hk, hk))
    cut = torch.tensor(cu, dtype=torch.int32, device=dev)
    o, lse = fa4.fwd_varlen(q.detach(), k.detach(), v.detach(), cut, cut, max(lens), max(lens), causal=True)
    r = ref(q, k, v, True, cu)
    do = torch.randn_like(o)
    dq, dk, dv = fa4.bwd_varlen(do, q.detach(), k.detach(), v.detach(), o, lse, cut, cut, max(lens), max(lens), causal=True)
    gq, gk, gv = torch.autograd.grad(r, (q, k, v), do.float())
    print(f"check varlen causal: out {rel(o, r):.2e} dq {rel(dq, gq):.2e} dk {rel(dk, gk):.2e} dv {rel(dv, gv):.2e}")

def measure(fn, max_seconds=0.5, sample_seconds=20e-3):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter(); fn(); torch.cuda.synchronize(); est = time.perf_counter() - t0
    inner = int(min(64, max(3, sample_seconds / est)))
    samples = []
    deadline = time.perf_counter() + max_seconds
    while len(samples) < 5 or (len(samples) < 30 and time.perf_counter() < deadline):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        torch.cuda.synchronize()
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples)

def bench(names):
    for wl in W.all_workloads():
        if not any(wl.name.startswith(n) for n in names):
            continue
        h, hk, d = wl.num_heads, wl.num_kv_heads, wl.head_dim
        dense = wl.group == "dense"
        if dense:
            b, s = wl.batch, wl.seqlens_q[0]
            shp = lambda n: (b, s, n, d)
        else:
            shp = lambda n: (wl.total_q, n, d)
            cu_q, cu_k = (torch.tensor(c, dtype=torch.int32, device=dev) for c in wl.cu_seqlens())
            mq, mk = max(wl.seqlens_q), max(wl.seqlens_k)
        q = torch.randn(shp(h), device=dev, dtype=torch.bfloat16)
        k = torch.randn(shp(hk), device=dev, dtype=torch.bfloat16)
        v = torch.randn(shp(hk), device=dev, dtype=torch.bfloat16)
        do = torch.randn_like(q)
        for pack in (True, False):
            if dense:
                f = lambda: fa4.fwd(q, k, v, causal=wl.causal, pack_gqa=pack)
            else:
                f = lambda: fa4.fwd_varlen(q, k, v, cu_q, cu_k, mq, mk, causal=wl.causal, pack_gqa=pack)
            t = measure(f)
            print(f"FA4 {wl.name} fwd pack_gqa={pack}: {t*1e3:.3f} ms {wl.flops()/t/1e12:.0f} TFLOP/s", flush=True)
        o, lse = (fa4.fwd(q, k, v, causal=wl.causal) if dense else fa4.fwd_varlen(q, k, v, cu_q, cu_k, mq, mk, causal=wl.causal))
        if dense:
            ws = fa4.make_bwd_workspace(b, s, s, h, hk, wl.causal, dev)
            def fb():
                o, lse = fa4.fwd(q, k, v, causal=wl.causal)
                fa4.bwd(do, q, k, v, o, lse, causal=wl.causal, workspace=ws)
        else:
            ws = fa4.make_bwd_workspace_varlen(wl.total_q, wl.total_k, wl.batch, h, hk, wl.causal, dev)
            def fb():
                o, lse = fa4.fwd_varlen(q, k, v, cu_q, cu_k, mq, mk, causal=wl.causal)
                fa4.bwd_varlen(do, q, k, v, o, lse, cu_q, cu_k, mq, mk, causal=wl.causal, workspace=ws)
        t = measure(fb)
        print(f"FA4 {wl.name} fwd+bwd: {t*1e3:.3f} ms {wl.flops(True)/t/1e12:.0f} TFLOP/s", flush=True)
        del q, k, v, do, o, lse, ws
        torch.cuda.empty_cache()

if __name__ == "__main__":
    print(torch.cuda.get_device_name(), torch.__version__)
    if "--check" in sys.argv:
        check()
    bench([a for a in sys.argv[1:] if not a.startswith("--")])
