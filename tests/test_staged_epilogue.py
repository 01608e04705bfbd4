"""fwd_sm90's staged epilogue writes each consumer warpgroup's O rows into the tile's own Q stage (stmatrix .x4
stores, each lane addressing one 16-byte matrix row through `_sm90.swizzled_address`) and copies them out in 16-byte
pieces read through the same function. This checks, for every forward variant that stages (two Q stages), that
  - the pair addresses of a warpgroup are distinct and 4-byte aligned (no value overwrites another),
  - every thread's accumulator pair lands, by the stmatrix lane addressing (`fwd_sm90.staged_o_lane_row`, PTX's
    rule: lane l addresses row l % 8 of matrix l // 8, register m of lane l holds row l // 4, columns
    2 (l % 4) + {0, 1} of matrix m), at its pair address,
  - every 16-byte piece the copy reads holds exactly the 8 columns the writes put there, in column order,
  - each warpgroup's addresses fall in the 128-byte lines that hold its own 64 Q rows (so staging never touches the
    rows the other warpgroup's last GEMMs may still be reading), inside the stage being written,
  - every 16-byte piece sits where the TMA store of a warpgroup's rows reads it. That place comes from a model
    written here, not from the stage's CuTe layout. Each swizzle-width column block of the tile lies row after row
    (128-byte swizzle at D = 64 / 128, 64-byte at D = 96, fixed below). Within every 128-byte line, the 16-byte
    piece index is XORed with address bits 7 and up, as the TMA unit's 128 / 64-byte swizzle modes do. (When the
    staging wrote the 128-byte pattern at every D, the D = 96 GPU tests failed.)
Runs the CuTe DSL in a child process; no GPU needed."""

import textwrap

import pytest

from cute_child import run_cute_child

_CHILD = textwrap.dedent("""
    import cutlass
    import cutlass.cute as cute
    from jax_fa4.kernels import fwd_sm90
    from jax_fa4.kernels._sm90 import swizzled_address

    result = {}
    SWIZZLE_BYTES = {64: 128, 96: 64, 128: 128}  # the Q stage's TMA swizzle width per head dim (fwd_sm90's design)


    # Byte offset, in the Q stages, of element (row, col) as the TMA unit lays out a K-major tile: column blocks of
    # swizzle_bytes, each rows x swizzle_bytes, with 16-byte pieces XORed by address bits 7 and up.
    def tma_image_address(row, col, stage, stage_bytes, rows, itemsize, swizzle_bytes):
        block, inner = divmod(col * itemsize, swizzle_bytes)
        offset = stage * stage_bytes + (block * rows + row) * swizzle_bytes + inner
        pieces = swizzle_bytes // 16
        return offset ^ (((offset >> 7) % pieces) << 4)


    @cute.jit
    def check():
        for variant in fwd_sm90.VARIANTS:
            if cutlass.const_expr(variant[3] == 2):  # a pair variant: its one-CTA twin's layouts
                continue
            kernel = fwd_sm90.FwdSm90(variant)
            if cutlass.const_expr(not kernel.staged_epilogue):
                continue
            layout = kernel.q_smem_layout().outer
            sw = kernel.q_smem_layout().inner  # on byte addresses: bits [base+shift, +bits) XOR into [base, +bits)
            itemsize = fwd_sm90.DTYPES[variant[0]].width // 8
            stage = kernel.q_stages - 1
            stage_bytes = cute.cosize(layout) * itemsize // kernel.q_stages
            cols = kernel.hdim_v
            problems = []
            differ = 0
            for wg in cutlass.range_constexpr(kernel.tile_m // 64):
                written = {}
                for row in cutlass.range_constexpr(wg * 64, wg * 64 + 64):
                    for col in cutlass.range_constexpr(0, cols, 2):
                        a = swizzled_address(0, layout, (row, col, stage), itemsize, sw)
                        if cutlass.const_expr(a % 4 != 0 or a in written):
                            problems.append(f"pair ({row}, {col}) at {a}")
                        written[a] = (row, col)
                        if cutlass.const_expr(not stage * stage_bytes <= a < (stage + 1) * stage_bytes):
                            problems.append(f"pair ({row}, {col}) outside stage {stage}")
                for row in cutlass.range_constexpr(wg * 64, wg * 64 + 64):
                    for col in cutlass.range_constexpr(0, cols, 8):
                        src = swizzled_address(0, layout, (row, col, stage), itemsize, sw)
                        got = [written.get(src + 4 * j) for j in range(4)]
                        if cutlass.const_expr(src % 16 != 0 or got != [(row, col + 2 * j) for j in range(4)]):
                            problems.append(f"piece ({row}, {col}) reads {got}")
                        real = tma_image_address(row, col, stage, stage_bytes, kernel.tile_m, itemsize,
                                                 SWIZZLE_BYTES[kernel.hdim])
                        if cutlass.const_expr(real != src):
                            differ += 1
                # The stmatrix stores: thread t's accumulator pair (h, j) (row 16 (t // 32) + (t % 32) // 4 + 8 h,
                # columns 8 j + 2 (t % 4) + {0, 1} of the warpgroup's rows) is row (t % 32) // 4 of matrix
                # h + 2 (j % 2) of store j // 2, whose row address comes from lane 8 m + (t % 32) // 4.
                carried = {fwd_sm90.staged_o_register(st, m): (st, m) for st in range(cols // 16) for m in range(4)}
                if cutlass.const_expr(sorted(carried) != [(h, 2 * j) for h in range(2) for j in range(cols // 8)]):
                    problems.append(f"the stores carry pairs {sorted(carried)}")
                for t in cutlass.range_constexpr(128):
                    lane = t & 31
                    for h in cutlass.range_constexpr(2):
                        for j in cutlass.range_constexpr(cols // 8):
                            row, col = wg * 64 + 16 * (t >> 5) + (lane >> 2) + 8 * h, 8 * j + 2 * (lane & 3)
                            st, m = carried[(h, 2 * j)]
                            lane_row, lane_col = fwd_sm90.staged_o_lane_row((t & ~31) + 8 * m + (lane >> 2))
                            a = swizzled_address(0, layout, (wg * 64 + lane_row, 16 * st + lane_col, stage),
                                                 itemsize, sw) + 4 * (lane & 3)
                            if cutlass.const_expr(a != swizzled_address(0, layout, (row, col, stage), itemsize, sw)):
                                problems.append(f"thread {t} pair ({h}, {j}): stmatrix writes {a}")
                own_lines = {(cute.crd2idx((row, col, stage), layout) * itemsize) // 128
                             for row in range(wg * 64, wg * 64 + 64) for col in range(cols)}
                if cutlass.const_expr({a // 128 for a in written} != own_lines):
                    problems.append(f"warpgroup {wg} stages outside its rows' 128-byte lines")
            result[fwd_sm90.variant_name(variant)] = dict(problems=problems[:5], pairs=len(written), differ=differ,
                                                         swizzle_bits=sw.num_bits)
""")


@pytest.mark.build
def test_staged_epilogue_writes_what_the_row_copy_reads(tmp_path):
    result = run_cute_child(_CHILD, tmp_path, "check_staged_epilogue.py")
    # bf16 / fp16 x (D 64 / 96 / 128 x causal / local, and D 128 without a mask)
    assert len(result) == 14, sorted(result)
    for name, r in result.items():
        assert r["pairs"] > 0, name
        assert not r["problems"], f"{name}: {r['problems']}"
        assert r["differ"] == 0, f"{name}: {r['differ']} 16-byte pieces are not where the TMA store reads them"
    # D = 96 has the 64-byte swizzle, so the check above covered both patterns.
    assert sorted(n for n, r in result.items() if r["swizzle_bits"] == 2) == sorted(n for n in result if "_d96_" in n)
