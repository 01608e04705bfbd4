"""Host-side logic of the kernel path that needs no GPU: variant choice, refusals, metadata checks, grid bounds."""

import warnings

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from dq_accum_model import accum_float
from jax_fa4 import kernel_backend, metadata, validation


def _config(**kw):
    base = dict(batch=3, total_q=300, total_k=400, num_heads=8, num_kv_heads=2, head_dim=128, head_dim_v=128,
                dtype="bfloat16", max_seqlen_q=200, max_seqlen_k=250, causal=False, window_left=-1,
                window_right=-1, softcap=0.0, softmax_scale=0.1, has_seqused_q=False, has_seqused_k=False,
                num_splits=0, return_lse=False)
    base.update(kw)
    return validation.CallConfig(**base)


@pytest.mark.parametrize("causal,left,right,mask", [
    (False, -1, -1, "none"), (True, -1, 0, "causal"), (True, 40, 0, "local"), (False, -1, 7, "local"),
    (False, 5, -1, "local"), (False, 3, 9, "local")])
def test_mask_variant(causal, left, right, mask):
    cfg = _config(causal=causal, window_left=left, window_right=right)
    assert kernel_backend._fwd_mask(cfg) == mask
    assert kernel_backend._fwd_tag(cfg) == f"bf16_d128_{mask}"


def test_supports_names_what_the_kernel_cannot_run():
    assert "bfloat16 or float16" in kernel_backend.supports(_config(dtype="float32"))
    assert "head_dim_v" in kernel_backend.supports(_config(head_dim_v=64))
    assert "empty" in kernel_backend.supports(_config(total_q=0))
    if kernel_backend.arch() is None:  # CPU machines: the reason names the missing GPU, not a variant
        assert "no CUDA GPU" in kernel_backend.supports(_config())


def test_caller_metadata_with_other_tiles_is_refused():
    # Decode-shaped (max_seqlen_q 8, 4 query heads per KV head): the kernel packs GQA heads.
    need = metadata.make_config(num_heads=8, num_kv_heads=2, head_dim=128, causal=True, max_seqlen_q=8,
                                tile_m=128, tile_n=128, arch="sm90")
    assert need.pack_gqa
    cu = jnp.asarray([0, 5, 9], jnp.int32)
    for kw, name in ((dict(pack_gqa=False), "pack_gqa"), (dict(tile_n=64), "tile_n"), (dict(tile_m=64), "tile_m")):
        md = metadata.prepare_scheduler_metadata(cu, cu, max_seqlen_q=8, max_seqlen_k=8, num_heads=8,
                                                 num_kv_heads=2, head_dim=128, causal=True, implementation="xla",
                                                 arch="sm90", **kw)
        with pytest.raises(ValueError, match=name):
            kernel_backend._check_kernel_metadata(md, need)
    md = metadata.prepare_scheduler_metadata(cu, cu, max_seqlen_q=8, max_seqlen_k=8, num_heads=8, num_kv_heads=2,
                                             head_dim=128, causal=True, implementation="xla", arch="sm90")
    kernel_backend._check_kernel_metadata(md, need)  # the defaults are what the kernel runs with


@pytest.mark.parametrize("seed", range(20))
def test_single_tile_grid_covers_every_tile(seed):
    """The one-CTA-per-tile grid is sized statically; it must never be smaller than the real tile count."""
    rng = np.random.default_rng(seed)
    batch = int(rng.integers(1, 40))
    sq = rng.integers(0, 700, batch)
    sq[rng.random(batch) < 0.3] = int(rng.integers(0, 3))
    cu = np.concatenate([[0], np.cumsum(sq)]).astype(np.int32)
    total_q = int(cu[-1]) + int(rng.integers(0, 50))
    max_q = int(sq.max()) + int(rng.integers(0, 300))
    heads = int(rng.choice([1, 8, 32]))
    pack = bool(rng.random() < 0.5)
    md = metadata.prepare_scheduler_metadata(jnp.asarray(cu), jnp.asarray(cu), max_seqlen_q=max(max_q, 1),
                                             max_seqlen_k=max(max_q, 1), num_heads=heads, num_kv_heads=1,
                                             head_dim=128, num_splits=1, pack_gqa=pack, implementation="xla",
                                             arch="sm90")
    cfg = _config(batch=batch, total_q=total_q, num_heads=heads, num_kv_heads=1, max_seqlen_q=max(max_q, 1))
    assert kernel_backend._max_tiles(cfg, md.config) >= int(md.tile_prefix[-1])


def test_fifo_order_keeps_the_tiles_in_packed_order():
    cu = jnp.asarray([0, 10, 500, 501, 900], jnp.int32)
    md = metadata.prepare_scheduler_metadata(cu, cu, max_seqlen_q=490, max_seqlen_k=490, num_heads=4,
                                             num_kv_heads=4, head_dim=64, causal=True, implementation="xla",
                                             arch="sm90")
    order, prefix = kernel_backend._fifo_order(md)
    np.testing.assert_array_equal(np.asarray(order), np.arange(4))
    assert int(prefix[-1]) == int(md.tile_prefix[-1])                 # same tiles, other order
    assert list(np.asarray(md.virtual_batch_idx)) != list(range(4))  # the default really is longest-first


def test_forward_call_gets_lengths_read_by_the_reference_rules(monkeypatch):
    """Up to the FFI call (faked here, no GPU): out-of-contract lengths reach the kernel already read the way the
    reference reads them (running-maximum cu_seqlens clipped to the rows, seqused clipped, lengths cut to
    max_seqlen), and metadata comes from those lengths."""
    entry = {"target": "fake_fwd", "config": {"tile_m": 128, "tile_n": 128, "pack_gqa": False}}
    monkeypatch.setattr(kernel_backend, "_fwd_entry", lambda config: ("fake_fwd", entry))
    monkeypatch.setattr(kernel_backend, "arch", lambda: "sm_90a")
    seen = {}

    def fake_prepare(cfg, cu_q, cu_k, used_q, used_k):
        seen["prepare"] = (cu_q, used_q)
        return metadata.prepare_scheduler_metadata(cu_q, cu_k, max_seqlen_q=6, max_seqlen_k=6, num_heads=4,
                                                   num_kv_heads=2, head_dim=64, seqused_q=used_q,
                                                   seqused_k=used_k, num_splits=1, implementation="xla",
                                                   arch="sm90")

    def fake_ffi_call(target, results, **_):
        def call(*operands, **attrs):
            seen["operands"], seen["attrs"] = operands, attrs
            return tuple(jnp.zeros(r.shape, r.dtype) for r in results)
        return call

    monkeypatch.setattr(kernel_backend, "prepare_metadata", fake_prepare)
    monkeypatch.setattr(kernel_backend.jax.ffi, "ffi_call", fake_ffi_call)
    q = jnp.zeros((10, 4, 64), jnp.bfloat16)
    k = jnp.zeros((9, 2, 64), jnp.bfloat16)
    cu_q = jnp.asarray([0, 5, 3, 12], jnp.int32)       # decreases, then runs past the 10 rows
    cu_k = jnp.asarray([0, 4, 9, 9], jnp.int32)
    used_k = jnp.asarray([7, 2, 0], jnp.int32)          # 7 > its slot of 4
    cfg = validation.check_varlen(q, k, k, cu_q, cu_k, max_seqlen_q=6, max_seqlen_k=6, seqused_k=used_k,
                                  num_splits=1)
    kernel_backend.varlen_forward(q, k, k, cu_q, cu_k, None, used_k, config=cfg, scheduler_mode="single-tile")
    ops = [np.asarray(x) for x in seen["operands"]]
    np.testing.assert_array_equal(ops[3], [0, 5, 5, 10])    # cu_q as read
    np.testing.assert_array_equal(ops[4], [0, 4, 9, 9])     # cu_k
    np.testing.assert_array_equal(ops[5], [5, 0, 5])        # q lengths: 5, empty, 5 (cut from 5 = 10 - 5)
    np.testing.assert_array_equal(ops[6], [4, 2, 0])        # k lengths: seqused clipped to the slot
    np.testing.assert_array_equal(np.asarray(seen["prepare"][1]), ops[5])
    assert seen["attrs"]["scheduler_mode"] == 0 and seen["attrs"]["num_ctas"] >= int(ops[-1][-1])


def test_gqa_packing_default_for_calls_without_metadata():
    """Decode-shaped or mostly-short batches pack GQA heads; long sequences and unpackable ratios do not."""
    tiles = {"config": {"tile_m": 128, "tile_n": 128}}

    def packs(**kw):
        return kernel_backend.fwd_metadata_config(_config(**kw), tiles).pack_gqa

    assert packs(num_heads=32, num_kv_heads=8, max_seqlen_q=1, batch=32, total_q=32)            # long decode
    assert packs(num_heads=32, num_kv_heads=8, max_seqlen_q=4096, batch=128, total_q=16508)     # mixed serve
    assert not packs(num_heads=32, num_kv_heads=8, max_seqlen_q=8192, batch=4, total_q=32768)   # dense
    assert not packs(num_heads=32, num_kv_heads=8, max_seqlen_q=3428, batch=39, total_q=32768)  # packed train
    assert not packs(num_heads=8, num_kv_heads=8, max_seqlen_q=1, batch=32, total_q=32)         # no GQA
    assert not packs(num_heads=24, num_kv_heads=8, max_seqlen_q=1, batch=32, total_q=32)        # 3 per KV head


def test_split_capacity_bounds_the_partial_buffers():
    """Split-KV partials [splits, total_q, H, Dv] f32 stay under SPLIT_PARTIAL_BYTES; num_splits caps them; calls
    too big for two splits do not split at all."""
    decode = _config(batch=32, total_q=32, num_heads=32, num_kv_heads=8, max_seqlen_q=1)
    assert kernel_backend.split_capacity(decode) == metadata.DEFAULT_MAX_SPLITS
    assert kernel_backend.split_capacity(_config(batch=32, total_q=32, num_splits=5)) == 5
    assert kernel_backend.split_capacity(_config(batch=32, total_q=32, num_splits=1)) == 0
    train = _config(batch=39, total_q=32768, num_heads=32, num_kv_heads=8)
    assert kernel_backend.split_capacity(train) == 0
    for total_q in (1, 100, 1000, 5000, 20000):
        cfg = _config(total_q=total_q, num_heads=32, num_kv_heads=8)
        cap = kernel_backend.split_capacity(cfg)
        assert cap == 0 or cap * total_q * 32 * 129 * 4 <= kernel_backend.SPLIT_PARTIAL_BYTES


def test_auto_scheduler_mode_walks_packed_calls_from_both_ends():
    """"auto" is the two-ended walk for calls that pack GQA heads (decodes beside prefills), longest-first dynamic
    otherwise; every other mode passes through."""
    def cfg(pack):
        return metadata.make_config(num_heads=32, num_kv_heads=8, head_dim=128, max_seqlen_q=64, pack_gqa=pack)

    assert kernel_backend.resolve_scheduler_mode("auto", cfg(True)) == "dynamic-two-ended"
    assert kernel_backend.resolve_scheduler_mode("auto", cfg(False)) == "dynamic"
    for mode in validation.SCHEDULER_MODES[1:]:
        assert kernel_backend.resolve_scheduler_mode(mode, cfg(True)) == mode
        assert kernel_backend.resolve_scheduler_mode(mode, cfg(False)) == mode


def test_caller_metadata_left_unpacked_by_the_rule_warns(monkeypatch):
    """Mostly short sequences (256 + 1 + 1 query rows, 4 query heads per KV head): caller metadata made without
    total_q is unpacked, and the call warns; made with total_q, or unpacked on purpose, it does not."""
    entry = {"target": "fake_fwd", "config": {"tile_m": 128, "tile_n": 128, "pack_gqa": False}}
    monkeypatch.setattr(kernel_backend, "_fwd_entry", lambda config: ("fake_fwd", entry))
    monkeypatch.setattr(kernel_backend, "arch", lambda: "sm_90a")
    monkeypatch.setattr(kernel_backend.jax.ffi, "ffi_call", lambda target, results, **_: (
        lambda *operands, **attrs: tuple(jnp.zeros(r.shape, r.dtype) for r in results)))
    q = jnp.zeros((258, 8, 64), jnp.bfloat16)
    k = jnp.zeros((600, 2, 64), jnp.bfloat16)
    cu_q = jnp.asarray([0, 256, 257, 258], jnp.int32)
    cu_k = jnp.asarray([0, 256, 428, 600], jnp.int32)
    kw = dict(max_seqlen_q=256, max_seqlen_k=256)
    cfg = validation.check_varlen(q, k, k, cu_q, cu_k, num_splits=1, **kw)  # one split: no combine kernel

    def forward(**md_kw):
        md = metadata.prepare_scheduler_metadata(cu_q, cu_k, num_heads=8, num_kv_heads=2, head_dim=64,
                                                 implementation="xla", arch="sm90", tile_m=128, tile_n=128,
                                                 **kw, **md_kw)
        kernel_backend.varlen_forward(q, k, k, cu_q, cu_k, None, None, config=cfg, scheduler_metadata=md)
        return md

    with pytest.warns(UserWarning, match="total_q=q.shape"):
        assert not forward().config.pack_gqa
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert forward(total_q=258).config.pack_gqa
        assert not forward(pack_gqa=False).config.pack_gqa


def _accumulate_like_the_kernel(dq, cu_q, len_q, tile_q, rows):
    """What bwd_dkdv_sm90's dQ passes leave in dq_accum for the gradient dq [total_q, H, D], written
    element by element at the floats dq_accum_model.accum_float names."""
    total_q, heads, d = dq.shape
    acc = np.zeros((heads, rows * d), np.float32)
    for b in range(len(len_q)):
        chunk0 = (cu_q[b] + b * tile_q) // tile_q
        for i in range(len_q[b]):
            m, row = divmod(i, tile_q)
            for col in range(d):
                acc[:, (chunk0 + m) * tile_q * d + accum_float(row, col, d, tile_q)] = dq[cu_q[b] + i, :, col]
    return acc.reshape(heads, rows, d)


@pytest.mark.parametrize("d,tile_q", [(64, 64), (96, 64), (128, 64), (192, 32), (256, 32)])  # every dQ pass
def test_dq_from_accum_undoes_the_kernel_layout(d, tile_q):
    rng = np.random.default_rng(3)
    lens = np.array([70, 0, 1, 64, 130], np.int32)
    used = np.array([70, 0, 1, 50, 129], np.int32)
    cu = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
    total_q = int(cu[-1]) + 5  # rows past the last sequence
    dq = rng.standard_normal((total_q, 3, d)).astype(np.float32)
    rows = (total_q // tile_q + len(lens) + 1) * tile_q
    acc = _accumulate_like_the_kernel(dq, cu, used, tile_q, rows)
    got = np.asarray(kernel_backend.dq_from_accum(jnp.asarray(acc), jnp.asarray(cu), jnp.asarray(used), tile_q,
                                                  total_q))
    want = np.zeros_like(dq)
    for b in range(len(lens)):
        want[cu[b]:cu[b] + used[b]] = dq[cu[b]:cu[b] + used[b]]
    np.testing.assert_array_equal(got, want)


def test_chunk_table_names_each_chunks_rows():
    """bwd_dq_convert_sm90 reads chunk k's rows [0, used[k]) as packed rows start[k] + i: every used query row of
    every sequence exactly once, at the chunk row bwd_dkdv_sm90 adds it to, and no row of a padding chunk."""
    lens = np.array([70, 0, 1, 64, 130, 33], np.int32)
    used = np.array([70, 0, 1, 50, 129, 33], np.int32)
    cu = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
    total_q = int(cu[-1]) + 5
    rows = (total_q // 64 + len(lens) + 1) * 64
    start, n = (np.asarray(x) for x in kernel_backend._chunk_table(jnp.asarray(cu), jnp.asarray(used), 64, rows))
    want = {}
    for b in range(len(lens)):
        first = (cu[b] + b * 64) // 64
        for i in range(used[b]):
            want[(first + i // 64) * 64 + i % 64] = cu[b] + i
    got = {k * 64 + i: start[k] + i for k in range(rows // 64) for i in range(n[k])}
    assert got == want


def test_backward_layout_maps_have_no_loop():
    """dq_from_accum and to_chunk_rows run between the backward's kernels: a while loop there (jnp.searchsorted's
    default lowering) makes the host wait on the GPU at every step, so later calls could not be queued ahead."""
    cu, used = jnp.zeros((40,), jnp.int32), jnp.zeros((39,), jnp.int32)
    lowered = [jax.jit(kernel_backend.dq_from_accum, static_argnums=(3, 4)).lower(
                   jnp.zeros((2, 35328, 128), jnp.float32), cu, used, 64, 32768),
               jax.jit(kernel_backend.to_chunk_rows, static_argnums=(3, 4, 5)).lower(
                   jnp.zeros((2, 32768), jnp.float32), cu, used, 64, 35328, 0.0)]
    for low in lowered:
        assert "while" not in low.as_text()


@pytest.mark.parametrize("tile_q", [32, 64])
def test_lse_and_dsum_reach_the_chunk_the_kernel_reads(tile_q):
    """bwd_dkdv_sm90 bulk-copies lse2 / dsum of query block m of sequence b from the tile_q floats at chunk
    (cu_q[b] + b tile_q) // tile_q + m; a query row i of b must be at position i % tile_q of chunk
    first + i // tile_q, and every other position must hold the fill (+inf lse2 makes P = 0 there)."""
    rng = np.random.default_rng(5)
    lens = np.array([70, 0, 1, 64, 130, 33], np.int32)
    used = np.array([70, 0, 1, 50, 129, 33], np.int32)
    cu = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
    total_q = int(cu[-1]) + 5
    x = rng.standard_normal((3, total_q)).astype(np.float32)
    rows = (total_q // tile_q + len(lens) + 1) * tile_q
    got = np.asarray(kernel_backend.to_chunk_rows(jnp.asarray(x), jnp.asarray(cu), jnp.asarray(used), tile_q,
                                                  rows, np.inf))
    want = np.full((3, rows), np.inf, np.float32)
    for b in range(len(lens)):
        first = (cu[b] + b * tile_q) // tile_q
        for i in range(used[b]):
            assert want[0, first * tile_q + i] == np.inf  # no two rows share a slot
            want[:, first * tile_q + i] = x[:, cu[b] + i]
    np.testing.assert_array_equal(got, want)


def test_one_kernel_backward_only_where_it_pays(monkeypatch):
    """deterministic=False takes the one-kernel backward (where built) unless its padded float32 dQ buffer would
    outgrow q, out and dout together (many short sequences): those get the two fixed-order kernels instead."""
    def entry(module, config, suffix=""):
        return f"{module}{suffix}", {"config": {"tile_q": 64, "tile_k": 128}}
    monkeypatch.setattr(kernel_backend, "_variant_entry", entry)

    def launches(**kw):
        return [out for _, _, out in kernel_backend._backward_launches(_config(**kw), deterministic=False)]

    assert launches(batch=4, total_q=4 * 8192) == ["dkdvdq"]
    assert launches(batch=300, total_q=300 * 70) == ["dq", "dkdv"]  # 70-token sequences: chunks mostly padding
    assert launches(batch=300, total_q=300 * 70, causal=True, window_right=0) == ["dq", "dkdv"]
    for kv_heads in (2, 8):  # masked, grouped or not
        assert launches(batch=4, total_q=4 * 8192, causal=True, window_right=0, num_kv_heads=kv_heads) == \
            ["dkdvdq"]
    assert launches(batch=4, total_q=4 * 8192, window_left=100) == ["dkdvdq"]
    assert [out for _, _, out in kernel_backend._backward_launches(_config(batch=4, total_q=4 * 8192))] == \
        ["dq", "dkdv"]  # deterministic


def test_dq_pass_beside_dv_pass_at_large_head_dims(monkeypatch):
    """Where no one-kernel (dkdvdq) variant is built (D = 192 / 256), deterministic=False takes the dkdq pass (dK
    and atomic dQ) and the dv pass where the padded dQ buffer pays, else the three fixed-order kernels."""
    built = {"bwd_dq_sm90", "bwd_dkdv_sm90_dkdq", "bwd_dkdv_sm90_dk", "bwd_dkdv_sm90_dv"}

    def entry(module, config, suffix=""):
        name = f"{module}{suffix}"
        return (name if name in built else None), ({"config": {"tile_q": 32, "tile_k": 128}} if name in built
                                                   else f"{name} not built")
    monkeypatch.setattr(kernel_backend, "_variant_entry", entry)

    def launches(deterministic=False, **kw):
        return [out for _, _, out in kernel_backend._backward_launches(_config(head_dim=256, head_dim_v=256, **kw),
                                                                        deterministic=deterministic)]

    assert launches(batch=4, total_q=4 * 8192) == ["dkdq", "dv"]
    assert launches(batch=4, total_q=4 * 8192, causal=True, window_right=0) == ["dkdq", "dv"]
    assert launches(batch=300, total_q=300 * 20) == ["dq", "dk", "dv"]  # 20-token sequences: chunks mostly padding
    assert launches(deterministic=True, batch=4, total_q=4 * 8192) == ["dq", "dk", "dv"]


def test_backward_ticket_count_matches_the_kernels_pairs():
    """bwd_dkdv_sm90 takes tickets of two key blocks (N - 1 - p and p, p < ceil(N / 2), N = ceil(seqlen_k / tile_k))
    and finds a ticket's sequence and pair through the host's block_prefix: the host must count ceil(N / 2) tickets
    per sequence, or key blocks go unvisited (or visited twice). Checked for every built variant's configuration."""
    import json
    from jax_fa4.build import LIB_DIR, MANIFEST_NAME

    path = LIB_DIR / MANIFEST_NAME
    if not path.exists():
        pytest.skip("no built library (python -m jax_fa4.build)")
    configs = [e["config"] for name, e in json.loads(path.read_text())["handlers"].items()
               if name.startswith("bwd_dkdv_sm90__")]
    assert configs
    lengths = np.array([0, 1, 127, 128, 129, 255, 256, 257, 383, 384, 385, 8192, 8193], np.int32)
    for cfg in configs:
        prefix = np.asarray(kernel_backend._block_prefix(jnp.asarray(lengths), cfg["ticket_keys"]))
        blocks = -(-lengths // cfg["tile_k"])
        np.testing.assert_array_equal(np.diff(prefix), -(-blocks // 2))
        for n in blocks:  # the pairs visit every key block once
            pairs = -(-n // 2)
            visited = [b for p in range(pairs) for b in sorted({n - 1 - p, p})]
            assert sorted(visited) == list(range(n))


def test_backward_tickets_go_longest_first_and_cover_every_pair_once():
    """bwd_dkdv_sm90 decodes ticket t as tile_at does: j = the last position with block_prefix[j] * Hk <= t,
    sequence ticket_order[j], then KV head and pair. The host's order must put longer sequences (by query rows)
    first, keep ties in batch order, and the tickets must then name every (sequence, KV head, pair) exactly once."""
    rng = np.random.default_rng(7)
    len_q = rng.integers(0, 3000, size=23).astype(np.int32)
    len_q[[3, 9]] = 0
    len_q[[5, 6]] = 700  # a tie
    len_k = len_q + rng.integers(0, 300, size=23).astype(np.int32)
    heads_kv, ticket_keys, tile_k = 3, 256, 128
    order, prefix = (np.asarray(x) for x in kernel_backend._ticket_order(jnp.asarray(len_q), jnp.asarray(len_k),
                                                                          ticket_keys))
    assert sorted(order.tolist()) == list(range(23))
    assert all(len_q[a] > len_q[b] or (len_q[a] == len_q[b] and a < b) for a, b in zip(order, order[1:]))
    seen = []
    for t in range(prefix[-1] * heads_kv):
        j = np.searchsorted(prefix * heads_kv, t, side="right") - 1
        b = order[j]
        pairs = prefix[j + 1] - prefix[j]
        r = t - prefix[j] * heads_kv
        seen.append((b, r // pairs, r % pairs))
    expected = [(b, h, p) for b in range(23) for h in range(heads_kv)
                for p in range(-(-(-(-len_k[b] // tile_k)) // 2))]
    assert sorted(seen) == sorted(expected)
