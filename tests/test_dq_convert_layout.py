"""bwd_dq_convert_sm90's index maps, checked without a GPU: where each 16-byte piece of dq_accum belongs in the
chunk (`accum_cells`, against the register order bwd_dkdv_sm90 adds in: tests/dq_accum_model.py), and how rows are
staged in shared memory (`stage_word`): every (row, column pair) has its own word, a warp's 32 stores of one piece
land in 32 different banks, and each 16-byte piece the row copy reads holds 4 consecutive column pairs. Runs the
module in a child process (it imports the CuTe DSL)."""

import textwrap

from cute_child import run_cute_child

_CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, "tests")
    from dq_accum_model import accum_float
    from jax_fa4.kernels import bwd_dq_convert_sm90 as cv

    result = {}

    def check():
        problems = []
        threads = cv.THREADS
        for d in cv.HEAD_DIMS:
            tq = cv.TILE_Q[d]
            model = {accum_float(row, col, d, tq): (row, col) for row in range(tq) for col in range(d)}
            for f in range(0, tq * d, 4):
                got = [tuple(cell) for cell in cv.accum_cells(f, d)]
                if got != [model[f + i] for i in range(4)]:
                    problems.append(f"d={d} float {f}: {got} != {[model[f + i] for i in range(4)]}")
            words = {cv.stage_word(0, row, pair, d) for row in range(tq) for pair in range(d // 2)}
            if len(words) != tq * d // 2 or min(words) < 0 or max(words) >= tq * d * 2 or any(w % 4 for w in words):
                problems.append(f"d={d}: stage words are not one 4-byte word per (row, pair) in the stage")
            # one store instruction of a warp: cell i of every lane (two 32-bit words, or four 16-bit halves for
            # dQ^T); its words must fall in distinct banks (lanes may share a word)
            for j in range(tq * d // 4 // threads):
                for warp in range(threads // 32):
                    for i in ((0, 2) if not cv.bwd_dkdv_sm90.dq_transposed(d) else range(4)):
                        words = set()
                        for lane in range(32):
                            row, col = cv.accum_cells((j * threads + 32 * warp + lane) * 4, d)[i]
                            words.add(cv.stage_word(0, row, col // 2, d))
                        if len({w // 4 % 32 for w in words}) != len(words):
                            problems.append(f"d={d} load {j} warp {warp} cell {i}: bank conflicts")
            for row in range(tq):
                for piece in range(d // 8):
                    start = cv.stage_word(0, row, 4 * piece, d)
                    if start % 16 or [cv.stage_word(0, row, 4 * piece + i, d) for i in range(4)] != \\
                            [start + 4 * i for i in range(4)]:
                        problems.append(f"d={d} row {row} piece {piece} is not 4 consecutive words")
        result["problems"] = problems[:20]
""")


def test_convert_index_maps(tmp_path):
    assert run_cute_child(_CHILD, tmp_path)["problems"] == []
