"""fwd_sm90's half tiles (m-blocks of at most 64 rows: decode-shaped sequences, last m-blocks) split their key
blocks between the two consumer warpgroups, and the second hands its O accumulator to the first through the tile's
Q stage (FwdSm90.merge_layout), thread rank for thread rank. This checks, for every forward variant, that
  - the float32 merge view covers each Q stage exactly (same bytes, same stage offsets), so the merge neither spills
    past the tile's stage nor into the next tile's Q loading in the other stage,
  - thread t of the first consumer warpgroup and thread t + 128 of the second hold the same accumulator columns,
    64 rows apart (the same query rows of a half tile), element for element, so each adds what its twin wrote.
Runs the CuTe DSL in a child process; no GPU needed."""

import textwrap

import pytest

from cute_child import run_cute_child

_CHILD = textwrap.dedent("""
    import cutlass
    import cutlass.cute as cute
    from jax_fa4.kernels import fwd_sm90

    result = {}

    @cute.jit
    def check():
        checked_twins = set()
        for variant in fwd_sm90.VARIANTS:
            if cutlass.const_expr(variant[3] == 2):  # a pair variant: its one-CTA twin's layouts
                continue
            kernel = fwd_sm90.FwdSm90(variant)
            q_layout = kernel.q_smem_layout().outer
            itemsize = fwd_sm90.DTYPES[variant[0]].width // 8
            merge = kernel.merge_layout()
            problems = []
            if cutlass.const_expr(cute.cosize(merge) * 4 != cute.cosize(q_layout) * itemsize):
                problems.append(f"merge view {cute.cosize(merge) * 4} B, "
                                f"Q stages {cute.cosize(q_layout) * itemsize} B")
            for s in cutlass.range_constexpr(kernel.q_stages):
                merge_at = cute.crd2idx((0, 0, s), merge) * 4
                if cutlass.const_expr(merge_at != cute.crd2idx((0, 0, s), q_layout) * itemsize):
                    problems.append(f"stage {s} starts elsewhere")
            twins = 0
            if cutlass.const_expr(variant[:2] not in checked_twins):
                checked_twins.add(variant[:2])
                mma = kernel.make_mma_pv()
                ident = cute.make_identity_tensor((kernel.tile_m, kernel.hdim_v))
                for t in cutlass.range_constexpr(128):
                    mine = mma.get_slice(t).partition_C(ident)
                    theirs = mma.get_slice(t + 128).partition_C(ident)
                    if cutlass.const_expr(cute.size(mine) != cute.size(merge, mode=[0])):
                        problems.append(f"thread {t} holds {cute.size(mine)} accumulator elements")
                    for e in cutlass.range_constexpr(cute.size(mine)):
                        a, b = mine[e], theirs[e]
                        if cutlass.const_expr(a[0] + 64 != b[0] or a[1] != b[1] or a[0] >= 64):
                            problems.append(f"thread {t} element {e}: {a} vs {b}")
                        twins += 1
            result[fwd_sm90.variant_name(variant)] = dict(problems=problems[:5], twins=twins)
""")


@pytest.mark.build
def test_half_tile_merge_view_and_thread_twins(tmp_path):
    result = run_cute_child(_CHILD, tmp_path, "check_half_tile_merge.py")
    assert len(result) == 30, sorted(result)
    assert sum(r["twins"] > 0 for r in result.values()) == 10  # bf16 / fp16 x 5 head dims
    for name, r in result.items():
        assert not r["problems"], f"{name}: {r['problems']}"
