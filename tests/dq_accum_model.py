"""Where bwd_dkdv_sm90's dQ passes ("dkdvdq", "dkdq") add each dQ element into their float32 accumulator: the one
statement of the register order that the CPU tests of dq_from_accum (test_kernel_backend) and of
bwd_dq_convert_sm90's index maps (test_dq_convert_layout) model the kernel with. test_dq_accum_layout checks the
same order against CuTe's own tiled MMA."""


def accum_float(row, col, d, tile_q=64):
    """Float, within one chunk (tile_q query rows x d columns, one head), where dQ element (row, col) is added.
    Warpgroup u's thread t = 32 w + 4 r + l adds its register 4 c + 2 e + k at float u tile_q d / 2 + 512 c + 4 t
    + 2 e + k (a warp's 16-byte reductions side by side), and holds there the m64 accumulator's row 16 w + 8 e + r,
    column 8 c' + 2 l + k of its c'-th column block.
    tile_q = 64 (D <= 128, dQ = dS K): accumulator rows are queries, warpgroup u has columns [u d / 2, (u + 1) d / 2)
    (c = c').
    tile_q = 32 (D >= 192, dQ^T = K^T dS^T): accumulator rows are head dims. Where d is a multiple of 128 the
    warpgroups take alternate 64-row blocks (block 2 m + u) and all queries (c = 4 m + query // 8); else each takes
    16 queries (u = query // 16) and every 64-row block m (c = 2 m + query % 16 // 8)."""
    if tile_q >= 64:
        u, cc = divmod(col, d // 2)
        c, l, k = cc // 8, (cc % 8) // 2, cc % 2
        w, e, r = row // 16, (row // 8) % 2, row % 8
    else:
        q, dim = row, col
        if d % 128 == 0:
            m, u = divmod(dim // 64, 2)
            c = (tile_q // 8) * m + q // 8
        else:
            m, u = dim // 64, q // (tile_q // 2)
            c = (tile_q // 16) * m + (q % (tile_q // 2)) // 8
        rr = dim % 64
        w, e, r = rr // 16, (rr // 8) % 2, rr % 8
        l, k = (q % 8) // 2, q % 2
    return u * tile_q * d // 2 + 512 * c + 4 * (32 * w + 4 * r + l) + 2 * e + k
