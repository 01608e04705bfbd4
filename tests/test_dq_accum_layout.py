"""The one-kernel backward (bwd_dkdv_sm90 "dkdvdq") adds dQ in register order, and kernel_backend.dq_from_accum
undoes that order from a formula for where wgmma's accumulator puts each register. This checks the formula against
the kernel's own tiled MMA: for every thread of both consumer warpgroups and every dQ register, the (row, column)
CuTe assigns equals the formula's (tests/test_kernel_backend.py checks dq_from_accum against the same formula).
Runs the CuTe DSL in a child process (CUTE_DSL_ARCH must be set before cutlass loads); no GPU needed."""

import textwrap

import pytest

from cute_child import run_cute_child

_CHILD = textwrap.dedent("""
    import cutlass
    import cutlass.cute as cute
    from jax_fa4.kernels import bwd_dkdv_sm90

    result = {}

    @cute.jit
    def check():
        kernel = bwd_dkdv_sm90.BwdDkdvSm90(("bf16", HEAD_DIM, "causal", "dkdvdq"))
        tq, d = kernel.tile_q, kernel.hdim
        mma = kernel.make_mma_dq()
        checked = 0
        mismatched = 0
        for tidx in cutlass.range_constexpr(256):
            coords = mma.get_slice(tidx).partition_C(cute.make_identity_tensor((tq, d)))
            wg, t = tidx // 128, tidx % 128
            w, r, l = t // 32, (t % 32) // 4, t % 4
            for e in cutlass.range_constexpr(cute.size(coords)):
                c, h, k = e // 4, (e // 2) % 2, e % 2
                want = (16 * w + 8 * h + r, wg * (d // 2) + 8 * c + 2 * l + k)
                got = coords[e]
                checked += 1
                if cutlass.const_expr(got[0] != want[0] or got[1] != want[1]):
                    mismatched += 1
        result.update(checked=checked, mismatched=mismatched, per_thread=cute.size(coords), tile=[tq, d])
""")


@pytest.mark.build
@pytest.mark.parametrize("d", [64, 96, 128])  # every head dim with a "dkdvdq" pass
def test_dq_register_order_matches_dq_from_accum(tmp_path, d):
    r = run_cute_child(_CHILD.replace("HEAD_DIM", str(d)), tmp_path, "check_dq_layout.py")
    assert r["tile"] == [64, d]
    assert r["per_thread"] == d // 4 and r["checked"] == 256 * d // 4  # every element of the 64 x d tile, once
    assert r["mismatched"] == 0, f"{r['mismatched']} of {r['checked']} registers sit elsewhere than the formula says"
