"""Where bwd_dkdv_sm90's "dkdvdq" pass adds each dQ element into its float32 accumulator: the one statement of the
register order that the CPU tests of dq_from_accum (test_kernel_backend) and of bwd_dq_convert_sm90's index maps
(test_dq_convert_layout) model the kernel with. test_dq_accum_layout checks the same order against CuTe's own
tiled MMA."""


def accum_float(row, col, d, tile_q=64):
    """Float, within one chunk (tile_q rows x d columns, one head), where element (row, col) is added. Column half u
    = col // (d / 2) belongs to one consumer warpgroup; its thread t = 32 w + 4 r + l holds register 4 c + 2 e + k
    at row 16 w + 8 e + r, column u d / 2 + 8 c + 2 l + k, and adds it at float u tile_q d / 2 + 512 c + 4 t + 2 e
    + k (a warp's 16-byte reductions side by side)."""
    u, cc = divmod(col, d // 2)
    c, l, k = cc // 8, (cc % 8) // 2, cc % 2
    w, e, r = row // 16, (row // 8) % 2, row % 8
    return u * tile_q * d // 2 + 512 * c + 4 * (32 * w + 4 * r + l) + 2 * e + k
