"""SchedulerMetadata: the jnp implementation against the independent oracle, its properties and its plumbing."""

import collections
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_fa4 import metadata
from jax_fa4.metadata import (SchedulerMetadata, check_matches, decode_pair, decode_tile,
                             prepare_scheduler_metadata)
from metadata_oracle import all_tiles, oracle

FIELDS = metadata.LEAVES


def _cu(lengths):
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)


def _random_case(rng, batch, max_q, max_k, p_empty=0.1, decode=False):
    sq = rng.integers(1, max_q + 1, batch)
    sk = rng.integers(1, max_k + 1, batch)
    if decode:
        sq = np.minimum(sq, rng.integers(1, 5, batch))
    sq[rng.random(batch) < p_empty] = 0
    sk[rng.random(batch) < p_empty] = 0
    return sq.astype(np.int32), sk.astype(np.int32)


def _prepare(sq, sk, *, seqused=False, rng=None, **kw):
    """Calls prepare_scheduler_metadata (jnp path, inside jit); with seqused, slots are padded beyond the lengths."""
    max_q = max(1, int(sq.max(initial=0)))
    max_k = max(1, int(sk.max(initial=0)))
    if seqused:
        pad_q = sq + rng.integers(0, 5, sq.shape[0]).astype(np.int32)
        pad_k = sk + rng.integers(0, 5, sk.shape[0]).astype(np.int32)
        args = (_cu(pad_q), _cu(pad_k), sq, sk)
    else:
        args = (_cu(sq), _cu(sk), None, None)

    @jax.jit
    def run(cu_q, cu_k, used_q, used_k):
        return prepare_scheduler_metadata(cu_q, cu_k, max_seqlen_q=max_q, max_seqlen_k=max_k, seqused_q=used_q,
                                          seqused_k=used_k, implementation="xla", **kw)

    return run(*args)


def _compare(md, sq, sk):
    want = oracle(md.config, sq, sk)
    got = md.to_numpy()
    for name in FIELDS:
        np.testing.assert_array_equal(got[name], np.asarray(want[name], np.int32), err_msg=name)
    return want


CONFIGS = [
    dict(num_heads=8, num_kv_heads=8, head_dim=128),
    dict(num_heads=8, num_kv_heads=2, head_dim=128, causal=True),
    dict(num_heads=8, num_kv_heads=2, head_dim=128, causal=True, pack_gqa=True),
    dict(num_heads=4, num_kv_heads=1, head_dim=64, window_size=(37, 5), pack_gqa=True),
    dict(num_heads=4, num_kv_heads=1, head_dim=64, window_size=(37, -1), pack_gqa=False),
    dict(num_heads=6, num_kv_heads=2, head_dim=256, window_size=(-1, 20), pack_gqa=True),
    dict(num_heads=6, num_kv_heads=3, head_dim=192, head_dim_v=128, causal=True, window_size=(50, -1)),
    dict(num_heads=16, num_kv_heads=2, head_dim=128, causal=True, window_size=(0, 0), pack_gqa=True,
         tile_m=64, tile_n=32),
    dict(num_heads=8, num_kv_heads=4, head_dim=128, window_size=(3, 100), tile_m=16, tile_n=16, dtype=jnp.float32),
]


def _random_config_case(ci, seed):
    rng = np.random.default_rng(1000 * ci + seed)
    kw = dict(CONFIGS[ci])
    batch = int(rng.choice([1, 2, 7, 33, 200]))
    sq, sk = _random_case(rng, batch, max_q=int(rng.choice([1, 5, 300, 1000])),
                          max_k=int(rng.choice([3, 64, 700, 3000, 20000])), decode=seed % 3 == 2)
    if "tile_m" not in kw and seed % 2 == 0:  # small tiles: many m/n blocks per sequence, so splits and masks bite
        kw.update(tile_m=int(rng.choice([16, 32, 64])), tile_n=int(rng.choice([16, 48, 64])))
    # L2 budgets around one sequence's K/V so the head-group width actually varies.
    dv = kw.get("head_dim_v", kw["head_dim"])
    per_token = (kw["head_dim"] + dv) * jnp.dtype(kw.get("dtype", jnp.bfloat16)).itemsize
    l2 = per_token * max(1, int(sk.mean())) * int(rng.integers(1, 2 * kw["num_heads"] + 1))
    kw.update(num_sms=int(rng.choice([4, 132, 2048])), l2_bytes=int(rng.choice([l2, 50 << 20])))
    return rng, kw, sq, sk


@pytest.mark.parametrize("ci", range(len(CONFIGS)))
@pytest.mark.parametrize("seed", range(6))
def test_matches_oracle_random(ci, seed):
    rng, kw, sq, sk = _random_config_case(ci, seed)
    md = _prepare(sq, sk, seqused=seed % 2 == 1, rng=rng, **kw)
    _compare(md, sq, sk)


def test_random_cases_exercise_the_policy():
    """The random cases above reach splits, partial L2 groups and multi-m-block sequences (else they prove little)."""
    hits = collections.Counter()
    for ci in range(len(CONFIGS)):
        for seed in range(6):
            rng, kw, sq, sk = _random_config_case(ci, seed)
            md = _prepare(sq, sk, **kw)
            f = md.to_numpy()
            hits["split"] += bool((f["num_splits"] > 1).any())
            hits["l2"] += bool(((f["num_heads_in_l2"] > 1) & (f["num_heads_in_l2"] < md.config.heads_eff)).any())
            hits["l2_one"] += bool((f["num_heads_in_l2"] == 1).any() and md.config.heads_eff > 1)
            hits["multi_m"] += bool((f["num_m_blocks"] > 3).any())
    assert min(hits.values()) >= 5, hits


@pytest.mark.parametrize("batch", [1000, 3000])
def test_matches_oracle_large_batch(batch):
    rng = np.random.default_rng(batch)
    sq, sk = _random_case(rng, batch, max_q=40, max_k=300, p_empty=0.05)
    md = _prepare(sq, sk, num_heads=8, num_kv_heads=2, head_dim=128, causal=True, num_sms=8, l2_bytes=1 << 16)
    _compare(md, sq, sk)


def test_chunked_m_loop_matches_oracle(monkeypatch):
    """The fori_loop path over m-block chunks (used when B * max_m_blocks is large) equals the one-shot path."""
    monkeypatch.setattr(metadata, "_M_CHUNK_ELEMENTS", 64)
    rng = np.random.default_rng(7)
    sq, sk = _random_case(rng, 20, max_q=900, max_k=900)
    md = _prepare(sq, sk, num_heads=4, num_kv_heads=2, head_dim=64, causal=True, window_size=(200, -1),
                  tile_m=32, tile_n=64, num_sms=2)
    _compare(md, sq, sk)


def test_mixed_prefill_decode_order():
    """Longest-first: the prefill sequences come first in the virtual order, decodes after, empty ones last."""
    sq = np.array([1] * 20 + [2048] * 2 + [0, 1], np.int32)
    sk = np.array([4096] * 20 + [8192] * 2 + [5, 0], np.int32)
    md = _prepare(sq, sk, num_heads=32, num_kv_heads=8, head_dim=128, causal=True, num_sms=132)
    want = _compare(md, sq, sk)
    order = md.to_numpy()["virtual_batch_idx"]
    assert set(order[:2]) == {20, 21}
    assert set(order[-2:]) == {22, 23}
    assert want["max_tile_blocks"][0] == 32  # 1 query row sees all 4096 keys


def _check_tile_cover(md, sq):
    """Every tile decoded once, with the metadata's head groups and one head at a time (the two-ended mode)."""
    f = md.to_numpy()
    total = int(f["tile_prefix"][-1])
    for one_head in (False, True):
        decoded = [decode_tile(f, t, one_head_at_a_time=one_head) for t in range(total)]
        assert len(set(decoded)) == total
        assert sorted(decoded) == sorted(all_tiles(md.config, sq, f["num_splits"]))
        # heaviest m-block first within each (sequence, head group)
        seen = collections.defaultdict(list)
        for b, h, m, s in decoded:
            seen[(b, h if one_head else h // int(f["num_heads_in_l2"][b]))].append(m)
        for ms in seen.values():
            assert ms == sorted(ms, reverse=True)


@pytest.mark.parametrize("seed", range(6))
def test_properties(seed):
    rng = np.random.default_rng(50 + seed)
    batch = int(rng.integers(1, 60))
    sq, sk = _random_case(rng, batch, max_q=200, max_k=2000, p_empty=0.2)
    md = _prepare(sq, sk, num_heads=8, num_kv_heads=2, head_dim=64, causal=bool(seed % 2), pack_gqa=seed < 3,
                  num_sms=int(rng.choice([1, 3, 132])), l2_bytes=int(rng.choice([1 << 12, 1 << 18, 1 << 26])))
    f = md.to_numpy()
    assert sorted(f["virtual_batch_idx"]) == list(range(batch))
    assert np.all(np.diff(f["tile_prefix"]) >= 0) and f["tile_prefix"][0] == 0
    assert np.all(f["num_splits"] >= 1) and np.all(f["num_splits"] <= 64)
    h_eff = md.config.heads_eff
    assert all(h_eff % int(L) == 0 for L in f["num_heads_in_l2"])
    _check_tile_cover(md, sq)


def test_split_policy():
    kw = dict(num_heads=32, num_kv_heads=8, head_dim=128, num_sms=132)
    # few long-KV decodes: split
    sq, sk = np.ones(4, np.int32), np.full(4, 131072, np.int32)
    f = _prepare(sq, sk, **kw).to_numpy()
    assert np.all(f["num_splits"] > 1)
    _compare(_prepare(sq, sk, **kw), sq, sk)
    # a huge batch fills the machine on its own: no splits
    big_q, big_k = np.full(5000, 512, np.int32), np.full(5000, 512, np.int32)
    f = _prepare(big_q, big_k, causal=True, **kw).to_numpy()
    assert np.all(f["num_splits"] == 1)
    # forced caps
    assert np.all(_prepare(sq, sk, num_splits=1, **kw).to_numpy()["num_splits"] == 1)
    assert np.all(_prepare(sq, sk, num_splits=3, **kw).to_numpy()["num_splits"] == 3)
    # short KV never splits below min_split_blocks per split
    sq2, sk2 = np.ones(2, np.int32), np.full(2, 500, np.int32)  # 4 blocks of 128
    assert np.all(_prepare(sq2, sk2, **kw).to_numpy()["num_splits"] == 1)


def test_pytree_through_jit():
    sq, sk = np.array([5, 0, 300], np.int32), np.array([7, 3, 300], np.int32)
    md = prepare_scheduler_metadata(_cu(sq), _cu(sk), max_seqlen_q=300, max_seqlen_k=300, num_heads=4,
                                    num_kv_heads=2, head_dim=64, causal=True, implementation="xla")
    leaves, treedef = jax.tree_util.tree_flatten(md)
    assert len(leaves) == 5 and all(x.dtype == jnp.int32 for x in leaves)

    @jax.jit
    def passthrough(m):
        return jax.tree_util.tree_map(lambda x: x + 0, m), m.tile_prefix[-1]

    out, total = passthrough(md)
    assert isinstance(out, SchedulerMetadata) and out.config == md.config
    assert int(total) == int(md.tile_prefix[-1])
    for name in FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(out, name)), np.asarray(getattr(md, name)))
    assert hash(md.config) == hash(out.config)


def test_check_matches_messages():
    sq = np.array([5, 6], np.int32)
    md = prepare_scheduler_metadata(_cu(sq), _cu(sq), max_seqlen_q=6, max_seqlen_k=6, num_heads=32, num_kv_heads=8,
                                    head_dim=128, causal=True, implementation="xla")
    good = dict(num_heads=32, num_kv_heads=8, head_dim=128, head_dim_v=128, causal=True, window_size=(-1, -1),
                dtype=jnp.bfloat16, batch=2)
    check_matches(md, **good)
    check_matches(md, **{**good, "window_size": (-1, 0)})  # causal already means right = 0
    cases = [("num_heads", 16, "num_heads=32 but the call has num_heads=16"),
             ("num_kv_heads", 4, "num_kv_heads=8 but the call has num_kv_heads=4"),
             ("head_dim", 64, "head_dim=128 but the call has head_dim=64"),
             ("head_dim_v", 64, "head_dim_v=128 but the call has head_dim_v=64"),
             ("causal", False, "causal=True but the call has causal=False"),
             ("window_size", (16, 0), "window_size=(-1, 0) but the call has window_size=(16, 0)"),
             ("dtype", jnp.float32, "dtype itemsize=2 but the call has dtype itemsize=4"),
             ("batch", 3, "batch=2 but the call has batch=3")]
    for key, value, msg in cases:
        with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            check_matches(md, **{**good, key: value})
    with pytest.raises(ValueError, match="must be a SchedulerMetadata"):
        check_matches(object(), **good)


def test_defaults_and_validation():
    assert metadata.default_tiles(128) == (128, 128)
    assert metadata.default_tiles(128, masked=False) == (128, 128)
    assert metadata.default_tiles(96, masked=False) == (128, 160)
    assert metadata.default_tiles(64, masked=False) == (128, 192)
    assert metadata.default_tiles(192, masked=False) == (128, 96)
    assert metadata.make_config(num_heads=8, num_kv_heads=8, head_dim=64).tile_n == 192
    assert metadata.make_config(num_heads=8, num_kv_heads=8, head_dim=128, window_size=(-1, 5)).tile_n == 128
    assert metadata.default_tiles(64, 64, "sm_90a") == (128, 128)
    assert metadata.default_tiles(192, 128) == (128, 96)
    assert metadata.default_tiles(256) == (128, 80)
    assert metadata.default_tiles(256, arch="sm_100a") == (128, 128)
    with pytest.raises(ValueError, match="head_dim=512"):
        metadata.default_tiles(512)
    assert metadata.default_pack_gqa(1, 32, 8, 128)
    assert not metadata.default_pack_gqa(4096, 32, 8, 128)
    assert not metadata.default_pack_gqa(1, 8, 8, 128)
    assert metadata.default_pack_gqa(4096, 32, 8, 128, total_q=16508, batch=128)  # mostly decodes
    assert not metadata.default_pack_gqa(4096, 32, 8, 128, total_q=32768, batch=39)  # packed training documents
    cu = _cu(np.array([3], np.int32))
    md = prepare_scheduler_metadata(cu, cu, max_seqlen_q=1, max_seqlen_k=3, num_heads=32, num_kv_heads=8,
                                    head_dim=128, implementation="xla")
    # A decode shape: the packing rule says pack, but no kernel packs yet, so the default follows the kernels.
    assert md.config.pack_gqa == metadata.KERNELS_PACK_GQA and md.config.max_splits == 64
    assert md.config.tile_n == 128  # the forward kernel's tiles at head dim 128, with or without a mask
    with pytest.raises(TypeError, match="max_seqlen_q must be a static Python int"):
        prepare_scheduler_metadata(cu, cu, max_seqlen_q=jnp.int32(3), max_seqlen_k=3, num_heads=1, num_kv_heads=1,
                                   head_dim=64)
    with pytest.raises(ValueError, match="multiple of num_kv_heads"):
        prepare_scheduler_metadata(cu, cu, max_seqlen_q=3, max_seqlen_k=3, num_heads=6, num_kv_heads=4, head_dim=64)
    with pytest.raises(ValueError, match="seqused_q must have shape"):
        prepare_scheduler_metadata(cu, cu, max_seqlen_q=3, max_seqlen_k=3, num_heads=1, num_kv_heads=1, head_dim=64,
                                   seqused_q=jnp.zeros((2,), jnp.int32))
    with pytest.raises(ValueError, match="prepare kernel unavailable"):
        prepare_scheduler_metadata(cu, cu, max_seqlen_q=3, max_seqlen_k=3, num_heads=1, num_kv_heads=1, head_dim=64,
                                   implementation="kernel")


def test_default_implementation_falls_back_without_gpu():
    sq = np.array([4, 9], np.int32)
    kw = dict(max_seqlen_q=9, max_seqlen_k=9, num_heads=4, num_kv_heads=2, head_dim=64, causal=True)
    a = prepare_scheduler_metadata(_cu(sq), _cu(sq), **kw)
    b = prepare_scheduler_metadata(_cu(sq), _cu(sq), implementation="xla", **kw)
    for name in FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)))


def test_l2_cost_overflow_free():
    """Very long KV with a wide head: bytes_kv_head exceeds int32; the int32 formula must still agree."""
    sq = np.array([1, 1, 1], np.int32)
    sk = np.array([3_000_000, 20_000, 100], np.int32)
    for pack in (False, True):
        md = metadata.compute_metadata(
            metadata.make_config(num_heads=64, num_kv_heads=4, head_dim=256, dtype=jnp.float32, pack_gqa=pack,
                                 max_seqlen_q=1, l2_bytes=126 << 20, num_sms=148, tile_n=1 << 20),
            sq, sk, m_bound=1)
        np.testing.assert_array_equal(md.to_numpy()["num_heads_in_l2"],
                                      oracle(md.config, sq, sk)["num_heads_in_l2"])


def test_batch_100k_runs():
    rng = np.random.default_rng(3)
    batch = 100_000
    sq = rng.integers(0, 4, batch).astype(np.int32)
    sk = rng.integers(0, 3000, batch).astype(np.int32)
    start = time.perf_counter()
    md = jax.block_until_ready(_prepare(sq, sk, num_heads=32, num_kv_heads=8, head_dim=128, causal=True))
    elapsed = time.perf_counter() - start
    f = md.to_numpy()
    assert sorted(f["virtual_batch_idx"]) == list(range(batch))
    assert elapsed < 60
    # spot-check a slice against the oracle's per-sequence fields (the global ones depend on every sequence)
    want = oracle(md.config, sq[:2000], sk[:2000])
    np.testing.assert_array_equal(f["num_m_blocks"][:2000], want["num_m_blocks"])
    np.testing.assert_array_equal(f["num_heads_in_l2"][:2000], want["num_heads_in_l2"])


def test_batch_100k_long_sequences_chunked():
    """B * max_m_blocks beyond the one-shot bound goes through the chunked loop with bounded memory."""
    batch = 100_000
    sq = np.full(batch, 8, np.int32)
    sq[::1000] = 8192
    sk = sq.copy()
    md = jax.block_until_ready(_prepare(sq, sk, num_heads=8, num_kv_heads=8, head_dim=128, causal=True))
    f = md.to_numpy()
    assert f["num_m_blocks"][0] == 64 and f["num_m_blocks"][1] == 1
    assert set(f["virtual_batch_idx"][:100]) == set(range(0, batch, 1000))


_BUILD_SCRIPT = r"""
import os, sys, tempfile
from jax_fa4 import metadata
from jax_fa4.kernels import prepare
assert prepare.CHUNK == metadata.PREPARE_CHUNK, (prepare.CHUNK, metadata.PREPARE_CHUNK)
assert prepare.WORKSPACE_ARRAYS == metadata.PREPARE_WORKSPACE_ARRAYS
assert [n for n, k in prepare.SIGNATURE("small") if k == "i32"] == list(
    metadata.prepare_kernel_scalars(metadata.make_config(num_heads=2, num_kv_heads=1, head_dim=64),
                                    use_seqused_q=False, use_seqused_k=False))
assert set(prepare.VARIANTS) == {metadata.prepare_kernel_variant(1), metadata.prepare_kernel_variant(10**5)}
arch = os.environ["CUTE_DSL_ARCH"]
out = tempfile.mkdtemp()
for variant in prepare.VARIANTS:
    prepare.compile_variant(variant, arch).export_to_c(out, "prepare_" + variant, "jaxfa4_test_prepare_" + variant)
print(sorted(os.listdir(out)))
"""


@pytest.mark.build
@pytest.mark.parametrize("arch", ["sm_90a", "sm_100a"])
def test_prepare_kernel_compiles_and_exports(arch):
    """The prepare kernel AOT-compiles for `arch` and exports; its contract constants match this module's."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, CUTE_DSL_ARCH=arch, PYTHONPATH=str(root))
    done = subprocess.run([sys.executable, "-c", _BUILD_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "prepare_large.o" in done.stdout and "prepare_small.h" in done.stdout


def _emulate_prepare_kernel(cfg, sq, sk, chunk):
    """NumPy mirror of jax_fa4/kernels/prepare.py's large path (phases, bitonic sort, binary-search ranks, scan),
    with a configurable chunk size, to check the kernel's algorithm (not its DSL) against the reference."""
    batch = len(sq)
    nchunks = max(1, -(-batch // chunk))
    s = metadata.prepare_kernel_scalars(cfg, use_seqused_q=False, use_seqused_k=False)
    num_m = np.zeros(batch, np.int64)
    in_l2 = np.zeros(batch, np.int64)
    most = np.zeros(batch, np.int64)
    chunk_sum = np.zeros(nchunks, np.int64)
    for b in range(batch):  # phase 1 (the threads' balanced walk over (sequence, m-block) pairs collapsed)
        q, k = int(sq[b]), int(sk[b])
        num_m[b] = (q * s["qpk"] + s["tile_m"] - 1) // s["tile_m"]
        total = 0
        for m in range(num_m[b]):
            first = m * s["tile_m"] // s["qpk"]
            last = min(q - 1, ((m + 1) * s["tile_m"] - 1) // s["qpk"])
            lo = 0 if s["window_left"] < 0 else max(0, first + k - q - s["window_left"])
            hi = k - 1 if s["window_right"] < 0 else min(k - 1, last + k - q + s["window_right"])
            if lo <= hi:
                n = hi // s["tile_n"] - lo // s["tile_n"] + 1
                total += n
                most[b] = max(most[b], n)
        chunk_sum[b // chunk] += total
        quot = min(k // s["l2_group"], s["l2_budget"] // s["kv_bytes_per_token"] + 1)
        cost = quot * s["kv_bytes_per_token"] + ((k % s["l2_group"]) * s["kv_bytes_per_token"]) // s["l2_group"]
        limit = s["heads_eff"] if cost == 0 else min(s["heads_eff"], s["l2_budget"] // cost)
        in_l2[b] = max([1] + [d for d in range(1, limit + 1) if s["heads_eff"] % d == 0])
    total = int(chunk_sum.sum()) * s["heads_eff"]  # phase 2
    target = max(s["min_split_blocks"], (total + 2 * s["num_sms"] - 1) // (2 * s["num_sms"]))
    splits = np.zeros(batch, np.int64)
    keys = np.zeros(batch, np.int64)
    tiles = np.zeros(batch, np.int64)
    sorted_key = np.zeros((nchunks, chunk), np.int64)
    sorted_idx = np.zeros((nchunks, chunk), np.int64)
    before = lambda ka, ia, kb, ib: (ka > kb) | ((ka == kb) & (ia < ib))  # noqa: E731
    for c in range(nchunks):
        key = np.full(chunk, -1, np.int64)
        idx = c * chunk + np.arange(chunk)
        for t in range(chunk):
            b = c * chunk + t
            if b < batch:
                cap = min(s["max_splits"], max(1, most[b] // s["min_split_blocks"]))
                splits[b] = min(max((most[b] + target - 1) // target, 1), cap)
                keys[b] = key[t] = (most[b] + splits[b] - 1) // splits[b]
                tiles[b] = num_m[b] * s["heads_eff"] * splits[b]
        active = 2  # the kernel runs only the stages that span the chunk's real sequences (padding sorts last)
        while active < min(chunk, batch - c * chunk):
            active *= 2
        size = 2
        while size <= min(active, chunk):  # bitonic network, all "threads" of a step at once
            stride = size // 2
            while stride >= 1:
                t = np.arange(chunk)
                p = t ^ stride
                lower = t[p > t]
                part = p[p > t]
                ka, ia, kb, ib = key[lower], idx[lower], key[part], idx[part]
                swap = np.where((lower & size) == 0, before(kb, ib, ka, ia), before(ka, ia, kb, ib))
                key[lower[swap]], key[part[swap]] = kb[swap], ka[swap]
                idx[lower[swap]], idx[part[swap]] = ib[swap], ia[swap]
                stride //= 2
            size *= 2
        sorted_key[c], sorted_idx[c] = key, idx
    vbi = np.zeros(batch, np.int64)
    virt_tiles = np.zeros(batch, np.int64)
    for b in range(batch):  # phase 3
        rank = 0
        for c in range(nchunks):
            lo, hi = 0, chunk
            while lo < hi:
                mid = (lo + hi) // 2
                if before(sorted_key[c, mid], sorted_idx[c, mid], keys[b], b):
                    lo = mid + 1
                else:
                    hi = mid
            rank += lo
        vbi[rank] = b
        virt_tiles[rank] = tiles[b]
    prefix = np.concatenate([[0], np.cumsum(virt_tiles)])  # phase 4
    return {"num_m_blocks": num_m, "num_splits": splits, "virtual_batch_idx": vbi, "num_heads_in_l2": in_l2,
            "tile_prefix": prefix}


@pytest.mark.parametrize("chunk", [4, 16, 1024])
@pytest.mark.parametrize("seed", range(3))
def test_prepare_kernel_algorithm_matches_reference(chunk, seed):
    rng = np.random.default_rng(900 + seed)
    batch = int(rng.choice([1, 5, 64, 300]))
    sq, sk = _random_case(rng, batch, max_q=300, max_k=3000, p_empty=0.15, decode=seed == 1)
    sk[rng.random(batch) < 0.3] = 700  # many ties in the LPT key
    md = _prepare(sq, sk, num_heads=8, num_kv_heads=2, head_dim=128, causal=seed != 2, window_size=(-1, 40)
                  if seed == 2 else (-1, -1), num_sms=int(rng.choice([4, 132])), tile_m=64, tile_n=64,
                  l2_bytes=1 << 21)
    got = _emulate_prepare_kernel(md.config, sq, sk, chunk)
    for name in FIELDS:
        np.testing.assert_array_equal(got[name], md.to_numpy()[name], err_msg=name)


def test_metadata_told_the_token_count_packs_like_the_call_would():
    """A batch of mostly decodes beside a few prefills: varlen_attention's own metadata packs GQA heads (it sees
    q.shape[0]); caller metadata made with total_q packs the same way, and stays unpacked without it (the rule
    cannot see the token count in traced cu_seqlens)."""
    sq = np.array([4096] * 4 + [1] * 124, np.int32)
    sk = np.array([4096] * 4 + [2048] * 124, np.int32)
    cu_q, cu_k = _cu(sq), _cu(sk)
    kw = dict(max_seqlen_q=4096, max_seqlen_k=4096, num_heads=32, num_kv_heads=8, head_dim=128, causal=True,
              implementation="xla")
    assert prepare_scheduler_metadata(cu_q, cu_k, total_q=int(sq.sum()), **kw).config.pack_gqa
    assert not prepare_scheduler_metadata(cu_q, cu_k, **kw).config.pack_gqa
    assert not prepare_scheduler_metadata(cu_q, cu_k, total_q=4 * 4096 * 2, **kw).config.pack_gqa
    with pytest.raises(TypeError, match="total_q must be a static Python int"):
        prepare_scheduler_metadata(cu_q, cu_k, total_q=jnp.int32(4220), **kw)


@pytest.mark.parametrize("heads,kv_heads,causal,seed", [(32, 8, True, 0), (32, 8, False, 1), (8, 4, True, 2),
                                                       (6, 3, True, 3), (12, 2, False, 4)])
def test_tile_pairs_cover_every_tile_once_on_one_kv_head(heads, kv_heads, causal, seed):
    """The forward's pair variants (two CTAs sharing K/V) decode tile pairs: the two tiles of every pair lie in one
    sequence, m-block and split, on two query heads of one KV head, and all pairs together are every tile once,
    for every head-swizzle width (odd ones included: 6 heads give widths 1, 2, 3, 6) and in the two-ended mode."""
    rng = np.random.default_rng(90 + seed)
    batch = int(rng.integers(1, 40))
    sq, sk = _random_case(rng, batch, max_q=700, max_k=3000, p_empty=0.2)
    for l2 in (1 << 12, 1 << 18, 1 << 20, 1 << 26):
        md = _prepare(sq, sk, num_heads=heads, num_kv_heads=kv_heads, head_dim=64, causal=causal, pack_gqa=False,
                      num_sms=132, l2_bytes=l2)
        f = md.to_numpy()
        total = int(f["tile_prefix"][-1])
        assert total % 2 == 0
        for one_head in (False, True):
            tiles = [decode_tile(f, t, one_head_at_a_time=one_head) for t in range(total)]
            pairs = [(decode_pair(f, p, 0, one_head), decode_pair(f, p, 1, one_head)) for p in range(total // 2)]
            for first, second in pairs:
                assert (first[0], first[2], first[3]) == (second[0], second[2], second[3])
                assert second[1] == first[1] + 1 and first[1] % 2 == 0
                assert first[1] // (heads // kv_heads) == second[1] // (heads // kv_heads)
            assert sorted(t for pair in pairs for t in pair) == sorted(tiles)
