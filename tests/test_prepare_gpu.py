"""The GPU prepare kernel equals the jnp reference field by field, inside jit (needs a CUDA GPU + built library)."""

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from jax_fa4.metadata import LEAVES, prepare_scheduler_metadata

BATCHES = (1, 2, 3, 31, 257, 1000, 1024, 1025, 3000, 16384, 100_000)
CONFIGS = (
    dict(num_heads=32, num_kv_heads=8, head_dim=128, causal=True),                                # pack by rule
    dict(num_heads=32, num_kv_heads=8, head_dim=128, causal=True, pack_gqa=True),
    dict(num_heads=16, num_kv_heads=16, head_dim=64),
    dict(num_heads=8, num_kv_heads=2, head_dim=256, window_size=(100, 7), pack_gqa=False),
    dict(num_heads=8, num_kv_heads=1, head_dim=192, head_dim_v=128, causal=True, window_size=(300, -1),
         pack_gqa=True, tile_m=64, tile_n=48),
    dict(num_heads=4, num_kv_heads=2, head_dim=128, window_size=(-1, 33), num_splits=5, num_sms=7,
         l2_bytes=1 << 20, dtype=jnp.float32),
    dict(num_heads=32, num_kv_heads=8, head_dim=128, num_splits=1, tile_m=16, tile_n=16),
    # causal with a query step (64) that neither divides nor is a multiple of tile_n: the kernel's pair walk
    dict(num_heads=8, num_kv_heads=2, head_dim=64, causal=True, pack_gqa=False, tile_m=64, tile_n=48),
)
CASES = 210


def _lengths(rng, batch):
    kind = rng.integers(4)
    if kind == 0:  # decode: 1-4 queries, long keys
        sq = rng.integers(1, 5, batch)
        sk = rng.integers(1, 40_000, batch)
    elif kind == 1:  # prefill-like
        sq = rng.integers(1, 3000, batch)
        sk = sq + rng.integers(0, 100, batch)
    elif kind == 2:  # mixed
        sq = np.where(rng.random(batch) < 0.1, rng.integers(1, 4097, batch), 1)
        sk = rng.integers(1, 9000, batch)
    else:  # sq > sk too
        sq = rng.integers(1, 600, batch)
        sk = rng.integers(1, 600, batch)
    if batch > 5000:  # keep total tokens (and the cost of this test) bounded
        sq = np.minimum(sq, 64)
        sk = np.minimum(sk, 2048)
    sq[rng.random(batch) < 0.05] = 0
    sk[rng.random(batch) < 0.05] = 0
    return sq.astype(np.int32), sk.astype(np.int32)


def _cu(x):
    return np.concatenate([[0], np.cumsum(x)]).astype(np.int32)


_FNS = {}


def _fn(impl, batch, max_q, max_k, seqused, ci):
    key = (impl, batch, max_q, max_k, seqused, ci)
    if key not in _FNS:
        kw = CONFIGS[ci]

        def run(cu_q, cu_k, used_q, used_k):
            return prepare_scheduler_metadata(cu_q, cu_k, max_seqlen_q=max_q, max_seqlen_k=max_k,
                                              seqused_q=used_q if seqused else None,
                                              seqused_k=used_k if seqused else None, implementation=impl, **kw)

        _FNS[key] = jax.jit(run)
    return _FNS[key]


@pytest.mark.gpu
def test_prepare_kernel_matches_reference():
    rng = np.random.default_rng(2024)
    failures = []
    for case in range(CASES):
        batch = int(BATCHES[case % len(BATCHES)])
        ci = int(rng.integers(len(CONFIGS)))
        seqused = bool(rng.integers(2))
        sq, sk = _lengths(rng, batch)
        max_q, max_k = 4096, 40_000  # static bounds shared by many cases (fewer compilations)
        if seqused:  # slots padded past the used lengths
            cu_q = _cu(sq + rng.integers(0, 3, batch))
            cu_k = _cu(sk + rng.integers(0, 3, batch))
        else:
            cu_q, cu_k = _cu(sq), _cu(sk)
        args = (jnp.asarray(cu_q), jnp.asarray(cu_k), jnp.asarray(sq), jnp.asarray(sk))
        got = _fn("kernel", batch, max_q, max_k, seqused, ci)(*args)
        want = _fn("xla", batch, max_q, max_k, seqused, ci)(*args)
        assert got.config == want.config
        for name in LEAVES:
            a, b = np.asarray(getattr(got, name)), np.asarray(getattr(want, name))
            if a.shape != b.shape or not np.array_equal(a, b):
                bad = np.flatnonzero(a != b)[:5] if a.shape == b.shape else "shape"
                failures.append(f"case {case} B={batch} config={ci} seqused={seqused} {name}: first bad {bad}")
    assert not failures, "\n".join(failures[:20]) + f"\n({len(failures)} field mismatches)"


@pytest.mark.gpu
def test_prepare_kernel_empty_and_single():
    for sq, sk in (([0], [0]), ([0, 0, 0], [5, 0, 7]), ([1], [131072]), ([8192], [8192])):
        sq, sk = np.array(sq, np.int32), np.array(sk, np.int32)
        args = (jnp.asarray(_cu(sq)), jnp.asarray(_cu(sk)))
        kw = dict(max_seqlen_q=max(1, int(sq.max())), max_seqlen_k=max(1, int(sk.max())), num_heads=32,
                  num_kv_heads=8, head_dim=128, causal=True)
        got = jax.jit(lambda a, b: prepare_scheduler_metadata(a, b, implementation="kernel", **kw))(*args)
        want = jax.jit(lambda a, b: prepare_scheduler_metadata(a, b, implementation="xla", **kw))(*args)
        for name in LEAVES:
            np.testing.assert_array_equal(np.asarray(getattr(got, name)), np.asarray(getattr(want, name)),
                                          err_msg=f"{name} sq={sq} sk={sk}")


@pytest.mark.gpu
def test_prepare_kernel_keys_too_long_to_pack():
    """Sequences whose longest query tile visits >= 2**21 KV blocks take the kernel's unpacked sort (two words per
    pair); the rest of the batch (and the other chunk of the large variant) the packed one. seqused_k makes such
    lengths without memory."""
    rng = np.random.default_rng(7)
    for batch in (5, 700, 1500):
        sq = rng.integers(1, 300, batch).astype(np.int32)
        sk = rng.integers(1, 3000, batch).astype(np.int32)
        sk[rng.choice(batch, 3, replace=False)] = rng.integers(1 << 28, 1 << 29, 3)
        sk[0] = 1 << 28  # ties with distinct indices
        sk[batch - 1] = 1 << 28
        cu_q, cu_k = jnp.asarray(_cu(sq)), jnp.asarray(_cu(np.minimum(sk, 5)))
        kw = dict(max_seqlen_q=300, max_seqlen_k=1 << 29, num_heads=32, num_kv_heads=8, head_dim=128, causal=True)
        fns = {impl: jax.jit(lambda a, b, u, impl=impl: prepare_scheduler_metadata(
            a, b, seqused_k=u, implementation=impl, **kw)) for impl in ("kernel", "xla")}
        got, want = (fns[impl](cu_q, cu_k, jnp.asarray(sk)) for impl in ("kernel", "xla"))
        # The premise: some query tile visits at least 2**21 - 1 KV blocks (ceil(sk / tile_n) for the last rows under
        # bottom-right causal), the bound past which the kernel's one-word sort keys cannot hold a key.
        assert -(-int(sk.max()) // want.config.tile_n) >= (1 << 21) - 1
        for name in LEAVES:
            np.testing.assert_array_equal(np.asarray(getattr(got, name)), np.asarray(getattr(want, name)),
                                          err_msg=f"{name} batch={batch}")
