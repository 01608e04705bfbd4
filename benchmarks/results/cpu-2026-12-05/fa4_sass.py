"""Compile FlashAttention-4's SM90 forward or backward for one dense shape on this CPU machine and keep its SASS.

Usage: CUTE_DSL_ARCH=sm_90a CUTE_DSL_KEEP=sass CUTE_DSL_DUMP_DIR=OUT python fa4_sass.py fwd|bwd [causal]
Needs FA4_SRC (a folder holding flash_attn/cute from a FlashAttention checkout), quack-kernels (installed with
--no-deps into FA4_SRC/pkgs) and apache-tvm-ffi (FA4_SRC/tvm). Nothing here is imported by jax_fa4: it only makes
the SASS that sass_loop.py compares with ours. torch is replaced by a stub package (FA4_SRC/stub/torch) because
only tensor-free compile paths run, and the flash_attn / quack package __init__ files are bypassed (they import
torch-only front ends). Shape: the benchmark's 4 x 8192, 32 query / 8 KV heads, D = 128, bf16; the tile shapes
are the ones FlashAttention-4's interface picks for it (forward 128 x 128; backward 80 x 128 without a mask,
64 x 128 causal, dQ transposed at 80).
"""
import os
import sys
import types

src = os.environ["FA4_SRC"]
sys.path[:0] = [src, os.path.join(src, "stub"), os.path.join(src, "pkgs")]
sys.path.append(os.path.join(src, "tvm"))
for name, path in (("flash_attn", "flash_attn"), ("flash_attn.cute", "flash_attn/cute"), ("quack", "pkgs/quack")):
    module = types.ModuleType(name)
    module.__path__ = [os.path.join(src, path)]
    sys.modules[name] = module

import cutlass  # noqa: E402
import cutlass.cute as cute  # noqa: E402
from cutlass import Float32  # noqa: E402
from cutlass.cute.runtime import make_fake_compact_tensor, make_fake_stream  # noqa: E402

kind = sys.argv[1]
causal = "causal" in sys.argv[2:]
b, s, h, hk, d = 4, 8192, 32, 8, 128


def fake(shape, dtype=cutlass.BFloat16):
    return make_fake_compact_tensor(dtype, shape, stride_order=tuple(reversed(range(len(shape)))), assumed_align=16)


q, k, v = fake((b, s, h, d)), fake((b, s, hk, d)), fake((b, s, hk, d))
if kind == "fwd":
    from flash_attn.cute.flash_fwd_sm90 import FlashAttentionForwardSm90
    kernel = FlashAttentionForwardSm90(cutlass.BFloat16, d, d, h // hk, is_causal=causal, is_local=False,
                                       pack_gqa=False, tile_m=128, tile_n=128, num_stages=2, num_threads=384,
                                       Q_in_regs=False, intra_wg_overlap=True, mma_pv_is_rs=True)
    args = (q, k, v, fake((b, s, h, d)), fake((b, h, s), Float32), Float32(0.088)) + (None,) * 9
else:
    from flash_attn.cute.flash_bwd_sm90 import FlashAttentionBackwardSm90
    tm = 64 if causal else 80
    kernel = FlashAttentionBackwardSm90(
        cutlass.BFloat16, d, d, h // hk, causal, is_local=False, deterministic=False, tile_m=tm, tile_n=128,
        Q_stage=2, dO_stage=2, PdS_stage=2, SdP_swapAB=True, dKV_swapAB=False, dQ_swapAB=tm % 64 != 0,
        AtomLayoutMSdP=1, AtomLayoutNdKV=2, AtomLayoutMdQ=1, num_threads=384)
    rows = (s + tm - 1) // tm * tm
    args = (q, k, v, fake((b, s, h, d)), fake((b, h, rows), Float32), fake((b, h, rows), Float32),
            fake((b, h, rows * d), Float32), fake((b, hk, s * d), Float32), fake((b, hk, s * d), Float32),
            Float32(0.088)) + (None,) * 9
cute.compile(kernel, *args, stream=make_fake_stream(), options="--gpu-arch sm_90a")
print("compiled", kind, "causal" if causal else "full")
