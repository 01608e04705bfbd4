"""bwd_dkdv_sm90's dS^T stores by stmatrix, checked without a GPU: with `stmatrix_row` giving each lane's row
address and the stores STMATRIX_STEP bytes apart (XOR), every bf16 of every consumer thread's dS^T fragment lands
where the shared-memory layout keeps its (query, key), and the 64 x 128 block is covered once. The models: the
wgmma accumulator fragment (word p of thread t holds keys k0 + 8 (p % 2), queries 8 (p // 2) + 2 (t % 4) + {0, 1},
k0 = warp_first_key(t) + (t % 32) // 4, as check_ds_layout asserts at trace time), the layout ((query, key) at
byte 2 query + 128 key, 16-byte pieces XORed with the key's low 3 bits) and PTX's stmatrix .x4 (lane l addresses
row l % 8 of matrix l // 8; register m of lane l holds row l // 4, columns 2 (l % 4) + {0, 1} of matrix m). Runs
the module in a child process (it imports the CuTe DSL)."""

import textwrap

from cute_child import run_cute_child

_CHILD = textwrap.dedent("""
    from jax_fa4.kernels import bwd_dkdv_sm90 as bk

    result = {}

    def swizzled(query, key):
        byte = 2 * query + 128 * key
        return byte ^ (((byte >> 7) & 7) << 4)

    def check():
        problems, written = [], {}
        tq, tk, words = 64, bk.TILE_K, 16
        for t in range(256):
            warp, lane = t >> 5, t & 31
            k0 = bk.warp_first_key(t) + (lane >> 2)
            for p in range(words):
                i, m = divmod(p, 4)
                for half in range(2):
                    query, key = 8 * (p // 2) + 2 * (lane & 3) + half, k0 + 8 * (p % 2)
                    # stmatrix: this value is row lane // 4, column 2 (lane % 4) + half of matrix m, whose row
                    # r is addressed by lane 8 m + r of the same warp
                    q_row, k_row = bk.stmatrix_row(32 * warp + 8 * m + (lane >> 2))
                    address = (swizzled(q_row, k_row) ^ (bk.STMATRIX_STEP * i)) + 2 * (2 * (lane & 3) + half)
                    if address != swizzled(query, key):
                        problems.append(f"thread {t} word {p}.{half}: byte {address}, layout {swizzled(query, key)}")
                    written[address] = written.get(address, 0) + 1
        if sorted(written) != list(range(0, 2 * tq * tk, 2)) or set(written.values()) != {1}:
            problems.append("the stores do not cover the 64 x 128 block exactly once")
        result["problems"] = problems[:20]
""")


def test_ds_stmatrix_stores(tmp_path):
    assert run_cute_child(_CHILD, tmp_path)["problems"] == []
