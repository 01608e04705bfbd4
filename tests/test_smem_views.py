"""The backward kernels read Q / dO (bwd_dkdv_sm90) and K (bwd_dq_sm90) MN-major through `_sm90.swap_first_modes`
of their K-major shared-memory tiles, where they used to load a second, MN-major copy by TMA. This checks, for every
head dim and both kernels, that the view maps each (mn, k, stage) coordinate to the same shared-memory offset, with
the same swizzle, as the MN-major layout the second copy had: the wgmma descriptors then read the same bytes.
Runs the CuTe DSL in a child process (CUTE_DSL_ARCH must be set before cutlass loads); no GPU needed."""

import textwrap

import pytest

from cute_child import run_cute_child

_CHILD = textwrap.dedent("""
    import cutlass
    import cutlass.cute as cute
    import cutlass.utils.hopper_helpers as sm90_utils
    from cutlass.tensor_utils import LayoutEnum
    from jax_fa4.kernels import bwd_dkdv_sm90, bwd_dq_sm90
    from jax_fa4.kernels._sm90 import swap_first_modes

    def cases():
        for d in bwd_dkdv_sm90.HEAD_DIMS:
            cfg = bwd_dkdv_sm90.tile_config(("bf16", d, "none", bwd_dkdv_sm90.PASSES[d][0]))
            # Q / dO: the B operand (TILE_Q rows, D) of S^T = K Q^T, read as the B operand (D, TILE_Q) of dK += dS^T Q
            yield f"dkdv d={d}", (cfg["tile_k"], cfg["tile_q"], d), (cfg["tile_k"], d, cfg["tile_q"]), cfg["stages"]
            cfg = bwd_dq_sm90.tile_config(("bf16", d, "none"))
            # K: the B operand (TILE_K rows, D) of S = Q K^T, read as the B operand (D, TILE_K) of dQ += dS K
            yield f"dq d={d}", (cfg["tile_q"], cfg["tile_k"], d), (cfg["tile_q"], d, cfg["tile_k"]), cfg["stages"]

    result = {}

    @cute.jit
    def check():
        for name, kmajor_mnk, mnmajor_mnk, stages in cases():
            kmajor = sm90_utils.make_smem_layout_b(LayoutEnum.ROW_MAJOR, kmajor_mnk, cutlass.BFloat16, stages)
            mnmajor = sm90_utils.make_smem_layout_b(LayoutEnum.COL_MAJOR, mnmajor_mnk, cutlass.BFloat16, stages)
            view = swap_first_modes(kmajor)
            rows, cols = mnmajor_mnk[1], mnmajor_mnk[2]
            mismatched = 0
            unswapped = 0  # control: the K-major layout read without the swap must disagree
            for n in cutlass.range_constexpr(rows):
                for k in cutlass.range_constexpr(cols):
                    want = mnmajor((n, k, stages - 1))
                    if cutlass.const_expr(view((n, k, stages - 1)) != want):
                        mismatched += 1
                    if cutlass.const_expr(k < rows and n < cols and kmajor((n, k, stages - 1)) != want):
                        unswapped += 1
            result[name] = dict(mismatched=mismatched, unswapped=unswapped, checked=rows * cols,
                                swizzle=[str(view.inner), str(mnmajor.inner)])
""")


@pytest.mark.build
def test_transposed_views_equal_the_mn_major_layouts(tmp_path):
    result = run_cute_child(_CHILD, tmp_path, "check_views.py")
    assert len(result) == 10
    for name, r in result.items():
        assert r["checked"] > 0, name
        assert r["mismatched"] == 0, f"{name}: {r['mismatched']} of {r['checked']} offsets differ"
        assert r["swizzle"][0] == r["swizzle"][1], f"{name}: swizzles differ {r['swizzle']}"
        assert r["unswapped"] > 0, f"{name}: the control (no swap) agrees too, so the check proves nothing"
