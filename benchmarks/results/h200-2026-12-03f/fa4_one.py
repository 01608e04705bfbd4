"""One FA4 fwd+bwd call of dense-4x8192-full (or causal) inside a CUDA profiler range, for ncu."""
import os, sys
import torch
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "fa4"))
import fa4_ctypes as fa4
causal = "causal" in sys.argv[1:]
b, s, h, hk, d = 4, 8192, 32, 8, 128
dev = torch.device("cuda")
q = torch.randn(b, s, h, d, device=dev, dtype=torch.bfloat16)
k = torch.randn(b, s, hk, d, device=dev, dtype=torch.bfloat16)
v = torch.randn(b, s, hk, d, device=dev, dtype=torch.bfloat16)
do = torch.randn_like(q)
ws = fa4.make_bwd_workspace(b, s, s, h, hk, causal, dev)
def call():
    o, lse = fa4.fwd(q, k, v, causal=causal, pack_gqa=False)
    fa4.bwd(do, q, k, v, o, lse, causal=causal, workspace=ws)
for _ in range(3):
    call()
torch.cuda.synchronize()
torch.cuda.profiler.start()
call()
torch.cuda.synchronize()
torch.cuda.profiler.stop()
print("profiled one FA4 fwd+bwd call, causal =", causal)
