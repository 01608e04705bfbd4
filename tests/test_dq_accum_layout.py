"""The backward's dQ passes (bwd_dkdv_sm90 "dkdvdq" at D <= 128, "dkdq" at D >= 192) add dQ in register order,
and kernel_backend.dq_from_accum undoes that order from a formula for where wgmma's accumulator puts each register
(tests/dq_accum_model.py). This checks the formula against the kernel's own tiled MMA: for every thread of both
consumer warpgroups and every dQ register, the float the kernel adds it at (add_dq) holds, by the formula, the
(query, column) element CuTe assigns to that register. Runs the CuTe DSL in a child process (CUTE_DSL_ARCH must be
set before cutlass loads); no GPU needed."""

import textwrap

import pytest

from cute_child import run_cute_child
from dq_accum_model import accum_float

_CHILD = textwrap.dedent("""
    import cutlass
    import cutlass.cute as cute
    from jax_fa4.kernels import bwd_dkdv_sm90

    result = {}

    @cute.jit
    def check():
        kernel = bwd_dkdv_sm90.BwdDkdvSm90(("bf16", HEAD_DIM, "causal", PASS))
        tq, d = kernel.tile_q, kernel.hdim
        mma = kernel.make_mma_dq()
        shape = (d, tq) if cutlass.const_expr(kernel.dq_transposed) else (tq, d)
        cells = []
        for tidx in cutlass.range_constexpr(256):
            coords = mma.get_slice(tidx).partition_C(cute.make_identity_tensor(shape))
            wg, t = tidx // 128, tidx % 128
            for e in cutlass.range_constexpr(cute.size(coords)):
                a, b = coords[e]
                query, col = (b, a) if cutlass.const_expr(kernel.dq_transposed) else (a, b)
                cells.append([wg * tq * d // 2 + 512 * (e // 4) + 4 * t + e % 4, query, col])
        result.update(cells=cells, tile=[tq, d], transposed=kernel.dq_transposed)
""")


@pytest.mark.build
@pytest.mark.parametrize("d,pass_", [(64, "dkdvdq"), (96, "dkdvdq"), (128, "dkdvdq"), (192, "dkdq"),
                                     (256, "dkdq")])  # every pass that adds dQ
def test_dq_register_order_matches_dq_from_accum(tmp_path, d, pass_):
    r = run_cute_child(_CHILD.replace("HEAD_DIM", str(d)).replace("PASS", repr(pass_)), tmp_path,
                       "check_dq_layout.py")
    tq = r["tile"][0]
    assert r["tile"] == [64 if d <= 128 else 32, d] and r["transposed"] == (d > 128)
    floats = sorted(f for f, _, _ in r["cells"])
    assert floats == list(range(tq * d)), "each float of the chunk is added by exactly one register"
    wrong = [(f, q, c) for f, q, c in r["cells"] if accum_float(q, c, d, tq) != f]
    assert not wrong, f"{len(wrong)} of {len(r['cells'])} registers sit elsewhere than the formula says: {wrong[:5]}"
