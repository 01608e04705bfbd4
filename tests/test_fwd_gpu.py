"""The SM90 forward kernel against the float64 oracle on fresh random ragged batches (needs an SM90 GPU + library).

Every case draws a new batch: empty and length-1 sequences, lengths that are not tile multiples, sq != sk, GQA
ratios 1/2/4/8, windows that cut through tiles, softcap on and off, seqused on and off, rows past the last sequence.
Outputs are poisoned: with JAX_FA4_POISON_OUTPUTS=1 every handler fills its outputs with 0xFF bytes (NaN) before
the launch, so any element the kernel does not write stays NaN and fails the test.
"""

import os

os.environ["JAX_FA4_POISON_OUTPUTS"] = "1"  # read by the handlers on every call

import dataclasses
import itertools

import numpy as np
import pytest

import jax
import jax.numpy as jnp

import jax_fa4
from jax_fa4 import kernel_backend, validation

from oracle import attention as oracle_attention, rel_err
from ragged_cases import cu_seqlens, draw_case, draw_window

DTYPES = {"bf16": jnp.bfloat16, "fp16": jnp.float16}
HEAD_DIMS = (64, 96, 128, 192, 256)
MASKS = ("none", "causal", "local")
CASES_PER_VARIANT = 10
PACKED_CASES_PER_VARIANT = 4
# Relative Frobenius error ceilings (inputs are rounded to the dtype first, so this is arithmetic error only).
MAX_REL = {"bf16": 1e-2, "fp16": 2e-3}


_FNS = {}


def _jitted(static):
    """mode: "xla" (reference path), a scheduler mode, or "packed" (dynamic, metadata with GQA heads packed)."""
    if static not in _FNS:
        (max_q, max_k, causal, window, softcap, seqused, mode) = static

        def run(q, k, v, cu_q, cu_k, used_q, used_k):
            lengths = dict(seqused_q=used_q if seqused else None, seqused_k=used_k if seqused else None)
            md = None
            if mode == "packed":
                md = jax_fa4.prepare_scheduler_metadata(
                    cu_q, cu_k, max_seqlen_q=max_q, max_seqlen_k=max_k, num_heads=q.shape[1],
                    num_kv_heads=k.shape[1], head_dim=q.shape[2], causal=causal, window_size=window, num_splits=1,
                    dtype=q.dtype, pack_gqa=True, **lengths)
            return jax_fa4.varlen_attention(
                q, k, v, cu_q, cu_k, max_seqlen_q=max_q, max_seqlen_k=max_k, causal=causal, window_size=window,
                softcap=softcap, return_lse=True, implementation="xla" if mode == "xla" else "kernel",
                scheduler_mode=mode if mode in validation.SCHEDULER_MODES else "dynamic", scheduler_metadata=md,
                **lengths)

        _FNS[static] = jax.jit(run)
    return _FNS[static]


def _case(rng, dtype_name, d, mask, mode="dynamic"):
    dtype = DTYPES[dtype_name]
    c = draw_case(rng, mask)
    sq, sk, causal, window, softcap, seqused = c.seqlen_q, c.seqlen_k, c.causal, c.window, c.softcap, c.seqused
    q, k, v = (jnp.asarray(rng.standard_normal(shape).astype(np.float32), dtype)
               for shape in ((c.total_q, c.num_heads, d), (c.total_k, c.num_kv_heads, d),
                             (c.total_k, c.num_kv_heads, d)))
    max_q = max_k = 1024  # static bounds above every drawn length, shared by all cases
    fn = _jitted((max_q, max_k, causal, window, softcap, seqused, mode))
    args = (q, k, v, jnp.asarray(c.cu_q), jnp.asarray(c.cu_k), jnp.asarray(sq), jnp.asarray(sk))
    out, lse = fn(*args)
    want = oracle_attention(np.asarray(q.astype(jnp.float32)), np.asarray(k.astype(jnp.float32)),
                            np.asarray(v.astype(jnp.float32)), c.cu_q, c.cu_k, seqused_q=sq if seqused else None,
                            seqused_k=sk if seqused else None, causal=causal, window=window, softcap=softcap)
    ref_out = _jitted((max_q, max_k, causal, window, softcap, seqused, "xla"))(*args)[0]
    return dict(out=np.asarray(out.astype(jnp.float32)), lse=np.asarray(lse), want=want,
                ref_err=rel_err(np.asarray(ref_out.astype(jnp.float32)), want["out"]),
                desc=f"{dtype_name} d={d} {mask} {c.describe()}")


def _check(res, dtype_name):
    out, lse, want = res["out"], res["lse"], res["want"]
    problems = []
    if not np.all(np.isfinite(out)):
        problems.append(f"{np.sum(~np.isfinite(out))} non-finite output elements (unwritten or NaN)")
    err = rel_err(out, want["out"])
    if not err <= MAX_REL[dtype_name] or not err <= 2 * res["ref_err"] + 1e-4:
        problems.append(f"out rel err {err:.2e} (reference path in the same dtype: {res['ref_err']:.2e})")
    dead = ~np.isfinite(want["lse"])
    if not np.array_equal(dead, lse == -np.inf):
        problems.append(f"lse -inf pattern differs at {np.argwhere(dead != (lse == -np.inf))[:4].tolist()}")
    live = ~dead
    if np.any(np.isnan(lse)):
        problems.append("NaN in lse")
    elif live.any() and np.max(np.abs(lse[live] - want["lse"][live])) > 2e-3:
        problems.append(f"lse max abs err {np.max(np.abs(lse[live] - want['lse'][live])):.2e}")
    if np.any(out[np.all(dead, axis=0)] != 0):
        problems.append("rows that see no key are not 0")
    return problems


@pytest.mark.gpu
@pytest.mark.parametrize("dtype_name,d,mask", list(itertools.product(DTYPES, HEAD_DIMS, MASKS)))
def test_forward_matches_oracle(dtype_name, d, mask):
    rng = np.random.default_rng([len(dtype_name), d, MASKS.index(mask)])
    failures = []
    for _ in range(CASES_PER_VARIANT):
        res = _case(rng, dtype_name, d, mask)
        problems = _check(res, dtype_name)
        if problems:
            failures.append(res["desc"] + ": " + "; ".join(problems))
    assert not failures, "\n".join(failures)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype_name,d,mask", list(itertools.product(DTYPES, HEAD_DIMS, MASKS)))
def test_forward_with_packed_gqa_heads_matches_oracle(dtype_name, d, mask):
    """Same batches, with the query heads of each KV head packed into one tile (head ratios 1/2/4/8)."""
    rng = np.random.default_rng([9, len(dtype_name), d, MASKS.index(mask)])
    failures = []
    for _ in range(PACKED_CASES_PER_VARIANT):
        res = _case(rng, dtype_name, d, mask, mode="packed")
        problems = _check(res, dtype_name)
        if problems:
            failures.append(res["desc"] + ": " + "; ".join(problems))
    assert not failures, "\n".join(failures)


def _forced_splits(md, splits):
    """The metadata with every sequence split exactly `splits` ways (tile counts and prefix to match)."""
    num_splits = jnp.full_like(md.num_splits, splits)
    tiles = md.num_m_blocks * md.config.heads_eff * num_splits
    prefix = jnp.concatenate([jnp.zeros((1,), jnp.int32),
                              jnp.cumsum(tiles[md.virtual_batch_idx], dtype=jnp.int32)])
    return dataclasses.replace(md, num_splits=num_splits, tile_prefix=prefix)


def _packed_qkv(rng, sq, sk, h, hk, d, dtype_name):
    """(cu_q, cu_k, q, k, v): fresh standard-normal packed inputs in the dtype for these per-sequence lengths."""
    cu_q, cu_k = cu_seqlens(sq), cu_seqlens(sk)
    q, k, v = (jnp.asarray(rng.standard_normal(shape).astype(np.float32), DTYPES[dtype_name])
               for shape in ((int(cu_q[-1]), h, d), (int(cu_k[-1]), hk, d), (int(cu_k[-1]), hk, d)))
    return cu_q, cu_k, q, k, v


def _check_with_metadata(q, k, v, cu_q, cu_k, md, dtype_name, implementation="kernel", **kw):
    """The kernel path's output and LSE for caller-made metadata `md`, checked against the float64 oracle (the
    problems found, as _check gives them; no reference-path comparison)."""
    out, lse = jax.jit(lambda q, k, v, md: jax_fa4.varlen_attention(
        q, k, v, jnp.asarray(cu_q), jnp.asarray(cu_k), scheduler_metadata=md, return_lse=True,
        implementation=implementation, **kw))(q, k, v, md)
    want = oracle_attention(np.asarray(q.astype(jnp.float32)), np.asarray(k.astype(jnp.float32)),
                            np.asarray(v.astype(jnp.float32)), cu_q, cu_k, causal=kw.get("causal", False),
                            window=kw.get("window_size", (-1, -1)), softcap=kw.get("softcap", 0.0))
    return _check(dict(out=np.asarray(out.astype(jnp.float32)), lse=np.asarray(lse), want=want, ref_err=1.0),
                  dtype_name)


@pytest.mark.gpu
@pytest.mark.parametrize("splits", [1, 2, 3, 7, 16, 64])
def test_forced_split_counts_match_oracle(splits):
    """Split-KV with every sequence forced into `splits` pieces (more pieces than key blocks included: empty
    splits), decode-shaped and short sequences, packed and unpacked GQA; the combine kernel merges the partials."""
    rng = np.random.default_rng(300 + splits)
    failures = []
    for case in range(6):
        dtype_name, d, mask = ("bf16", "fp16")[case % 2], (64, 128, 256)[case % 3], MASKS[case % 3]
        batch = int(rng.integers(1, 9))
        sq = rng.integers(1, 9, batch).astype(np.int32)
        sk = rng.integers(0, 3000, batch).astype(np.int32)
        sq[rng.random(batch) < 0.2] = 0
        sk[rng.random(batch) < 0.2] = int(rng.integers(1, 40))  # shorter than one key block
        causal, window = draw_window(rng, mask)
        hk = int(rng.choice([1, 2]))
        h = hk * int(rng.choice([1, 4]))
        pack = bool(case % 2)
        cu_q, cu_k = cu_seqlens(sq), cu_seqlens(sk)
        total_q, total_k = 128, -(-(int(cu_k[-1]) + 1) // 1024) * 1024
        dtype = DTYPES[dtype_name]
        q, k, v = (jnp.asarray(rng.standard_normal(shape).astype(np.float32), dtype)
                   for shape in ((total_q, h, d), (total_k, hk, d), (total_k, hk, d)))
        kw = dict(max_seqlen_q=8, max_seqlen_k=3000, causal=causal, window_size=window)
        md = jax_fa4.prepare_scheduler_metadata(jnp.asarray(cu_q), jnp.asarray(cu_k), num_heads=h, num_kv_heads=hk,
                                                head_dim=d, num_splits=splits, dtype=dtype, pack_gqa=pack, **kw)
        md = _forced_splits(md, splits)
        problems = _check_with_metadata(q, k, v, cu_q, cu_k, md, dtype_name, num_splits=splits, **kw)
        if problems:
            failures.append(f"{dtype_name} d={d} {mask} H={h} Hk={hk} pack={pack} sq={sq.tolist()} "
                            f"sk={sk.tolist()} window={window}: " + "; ".join(problems))
    assert not failures, "\n".join(failures)


@pytest.mark.gpu
@pytest.mark.parametrize("qpk", [2, 4, 8, 16])
def test_half_tiles_at_their_boundary_match_oracle(qpk):
    """GQA-packed decode-shaped sequences (sq * qpk <= 64) run in half tiles whose rows all sit in the first consumer
    warpgroup; lengths at, below and above that bound beside a longer prefill, every mask, automatic splits. (qpk 16
    never takes half tiles: the case checks that the bound is not applied there.)"""
    rng = np.random.default_rng(700 + qpk)
    bound = 64 // qpk
    failures = []
    for case in range(6):
        dtype_name, d, mask = ("bf16", "fp16")[case % 2], (64, 128, 256)[case % 3], MASKS[case // 2]
        sq = np.array([bound, max(bound - 1, 1), bound + 1, 1, 0, int(rng.integers(1, bound + 1)), 300], np.int32)
        sk = rng.integers(bound, 2500, sq.size).astype(np.int32)
        sk[4] = int(rng.integers(1, 60))
        causal, window = draw_window(rng, mask)
        hk = int(rng.choice([1, 2]))
        h = hk * qpk
        cu_q, cu_k, q, k, v = _packed_qkv(rng, sq, sk, h, hk, d, dtype_name)
        dtype = DTYPES[dtype_name]
        kw = dict(max_seqlen_q=512, max_seqlen_k=2500, causal=causal, window_size=window)
        md = jax_fa4.prepare_scheduler_metadata(jnp.asarray(cu_q), jnp.asarray(cu_k), num_heads=h, num_kv_heads=hk,
                                                head_dim=d, dtype=dtype, pack_gqa=True, **kw)
        problems = _check_with_metadata(q, k, v, cu_q, cu_k, md, dtype_name, **kw)
        if problems:
            failures.append(f"{dtype_name} d={d} {mask} H={h} Hk={hk} sq={sq.tolist()} sk={sk.tolist()} "
                            f"window={window} splits={np.asarray(md.num_splits).tolist()}: " + "; ".join(problems))
    assert not failures, "\n".join(failures)


@pytest.mark.gpu
@pytest.mark.parametrize("d,qpk", [(64, 4), (128, 4), (256, 4), (128, 1), (96, 1)])
def test_half_tiles_split_key_blocks_between_warpgroups(d, qpk):
    """A half tile's two consumer warpgroups take alternate key blocks and merge their softmax states: every block
    count from 1 (the second warpgroup computes nothing) to 9, odd and even, lengths that end inside a block,
    softcap on and off, a window that leaves one warpgroup's blocks without a visible key for some rows; GQA heads
    packed (qpk 4) and one query head per tile (qpk 1, up to 64 queries)."""
    rng = np.random.default_rng(900 + d + qpk)
    failures = []
    for dtype_name, mask, softcap in (("bf16", "causal", 0.0), ("fp16", "none", 0.0), ("bf16", "local", 30.0)):
        tile_n = jax_fa4.metadata.default_tiles(d, masked=mask != "none")[1]
        blocks = np.arange(1, 10)
        sk = ((blocks - 1) * tile_n + rng.integers(1, tile_n + 1, blocks.size)).astype(np.int32)
        sq = rng.integers(1, 64 // qpk + 1, blocks.size).astype(np.int32)  # sq * qpk <= 64: half tiles
        window = (int(tile_n // 2), 0) if mask == "local" else (-1, -1)
        hk, h = 2, 2 * qpk
        cu_q, cu_k, q, k, v = _packed_qkv(rng, sq, sk, h, hk, d, dtype_name)
        dtype = DTYPES[dtype_name]
        kw = dict(max_seqlen_q=64, max_seqlen_k=int(sk.max()), causal=mask == "causal", window_size=window,
                  softcap=softcap)
        md = jax_fa4.prepare_scheduler_metadata(jnp.asarray(cu_q), jnp.asarray(cu_k), num_heads=h, num_kv_heads=hk,
                                                head_dim=d, dtype=dtype, pack_gqa=True, num_splits=1,
                                                **{key: val for key, val in kw.items() if key != "softcap"})
        problems = _check_with_metadata(q, k, v, cu_q, cu_k, md, dtype_name, num_splits=1, **kw)
        if problems:
            failures.append(f"{dtype_name} d={d} {mask} softcap={softcap} sq={sq.tolist()} sk={sk.tolist()}: "
                            + "; ".join(problems))
    assert not failures, "\n".join(failures)


@pytest.mark.gpu
@pytest.mark.parametrize("d", [64, 128, 256])
def test_last_m_block_half_tiles_match_oracle(d):
    """A longer sequence's last m-block runs as a half tile when it holds at most half a tile of rows: last blocks
    of 1, half - 1 and half rows per head (half tiles) and half + 1, full - 1 and full (full tiles; one query head
    per tile: half = 64, full = 128) after 1-3 full m-blocks, sq != sk, every mask, softcap, one query head per
    tile and GQA heads packed (qpk 2 / 4), automatic and forced splits."""
    rng = np.random.default_rng(1100 + d)
    failures = []
    for case in range(6):
        dtype_name, mask = ("bf16", "fp16")[case % 2], MASKS[case % 3]
        qpk, pack = ((1, False), (2, True), (4, True))[case // 2]
        rows = 128 // qpk  # query rows per head of a full tile (qpk 1: not packed)
        half = rows // 2
        tail = np.array([1, half - 1, half, half + 1, rows - 1, rows])  # the last m-block's rows per head
        sq = (rng.integers(1, 4, tail.size) * rows + tail).astype(np.int32)
        sk = (sq + rng.integers(0, 300, sq.size)).astype(np.int32)
        causal, window = draw_window(rng, mask)
        softcap = float(rng.choice([0.0, 20.0]))
        hk = int(rng.choice([1, 2]))
        h = hk * qpk
        cu_q, cu_k, q, k, v = _packed_qkv(rng, sq, sk, h, hk, d, dtype_name)
        dtype = DTYPES[dtype_name]
        for splits in (0, 2):
            kw = dict(max_seqlen_q=int(sq.max()), max_seqlen_k=int(sk.max()), causal=causal, window_size=window)
            md = jax_fa4.prepare_scheduler_metadata(jnp.asarray(cu_q), jnp.asarray(cu_k), num_heads=h,
                                                    num_kv_heads=hk, head_dim=d, dtype=dtype, pack_gqa=pack,
                                                    num_splits=splits, **kw)
            if splits:
                md = _forced_splits(md, splits)
            problems = _check_with_metadata(q, k, v, cu_q, cu_k, md, dtype_name, num_splits=splits,
                                            softcap=softcap, **kw)
            if problems:
                failures.append(f"{dtype_name} d={d} {mask} H={h} Hk={hk} pack={pack} splits={splits} "
                                f"softcap={softcap} sq={sq.tolist()} sk={sk.tolist()} window={window}: "
                                + "; ".join(problems))
    assert not failures, "\n".join(failures)


@pytest.mark.gpu
def test_poisoning_reaches_the_handlers():
    """The coverage claim above rests on the poison: the prepare kernel's workspace output, which the kernel writes
    only in part for a small batch, must come back holding the 0xFF fill (-1)."""
    from jax_fa4 import ffi, metadata

    cfg = metadata.make_config(num_heads=4, num_kv_heads=4, head_dim=128, max_seqlen_q=64)
    cu = jnp.asarray([0, 5, 64], jnp.int32)
    target = ffi.target("prepare", "small", kernel_backend.arch())
    per_seq = jax.ShapeDtypeStruct((2,), jnp.int32)
    results = (per_seq,) * 4 + (jax.ShapeDtypeStruct((3,), jnp.int32),
                                jax.ShapeDtypeStruct((metadata.prepare_workspace_size(2),), jnp.int32))
    scalars = metadata.prepare_kernel_scalars(cfg, use_seqused_q=False, use_seqused_k=False)
    outs = jax.ffi.ffi_call(target, results)(cu, cu, cu, cu, **{k: np.int32(v) for k, v in scalars.items()})
    workspace = np.asarray(outs[-1])
    assert np.sum(workspace == -1) > workspace.size // 2


@pytest.mark.gpu
@pytest.mark.parametrize("seed", range(3))
def test_scheduler_modes_agree_bitwise(seed):
    """Tile order changes nothing inside a tile: every scheduler mode gives the same bits."""
    outs = []
    for mode in validation.SCHEDULER_MODES:
        rng = np.random.default_rng(100 + seed)  # same batch for every mode
        res = _case(rng, "bf16", 128, "causal", mode=mode)
        assert not _check(res, "bf16"), (mode, _check(res, "bf16"))
        outs.append(res["out"])
    for mode, out in zip(validation.SCHEDULER_MODES[1:], outs[1:]):
        np.testing.assert_array_equal(out, outs[0], err_msg=mode)


@pytest.mark.gpu
def test_caller_metadata_and_grad():
    """Metadata made once by the caller is used as is; jax.grad through the kernel path equals the reference's."""
    rng = np.random.default_rng(11)
    sq = np.array([300, 0, 1, 129, 1000], np.int32)
    cu = jnp.asarray(cu_seqlens(sq))
    q = jnp.asarray(rng.standard_normal((int(sq.sum()), 8, 128)), jnp.bfloat16)
    k = jnp.asarray(rng.standard_normal((int(sq.sum()), 2, 128)), jnp.bfloat16)
    v = jnp.asarray(rng.standard_normal((int(sq.sum()), 2, 128)), jnp.bfloat16)
    kw = dict(max_seqlen_q=1024, max_seqlen_k=1024, causal=True)
    md = jax_fa4.prepare_scheduler_metadata(cu, cu, num_heads=8, num_kv_heads=2, head_dim=128, **kw)

    def loss(q, k, v, impl, md):
        o = jax_fa4.varlen_attention(q, k, v, cu, cu, implementation=impl, scheduler_metadata=md, **kw)
        return jnp.sum(o.astype(jnp.float32) ** 2)

    with_md = jax.jit(lambda q, k, v: jax_fa4.varlen_attention(q, k, v, cu, cu, implementation="kernel",
                                                               scheduler_metadata=md, **kw))(q, k, v)
    without = jax.jit(lambda q, k, v: jax_fa4.varlen_attention(q, k, v, cu, cu, implementation="kernel",
                                                               **kw))(q, k, v)
    np.testing.assert_array_equal(np.asarray(with_md.astype(jnp.float32)), np.asarray(without.astype(jnp.float32)))
    g_kernel = jax.jit(jax.grad(loss, argnums=(0, 1, 2)), static_argnums=3)(q, k, v, "kernel", md)
    g_ref = jax.jit(jax.grad(loss, argnums=(0, 1, 2)), static_argnums=3)(q, k, v, "xla", None)
    for a, b in zip(g_kernel, g_ref):
        assert rel_err(np.asarray(a.astype(jnp.float32)), np.asarray(b.astype(jnp.float32))) < 2e-2
    assert kernel_backend.supports(validation.check_varlen(q, k, v, cu, cu, **kw)) is None


PAIR_CASES = [("bf16", 128, "causal"), ("bf16", 128, "none"), ("fp16", 128, "local"), ("bf16", 64, "causal"),
              ("fp16", 96, "none"), ("bf16", 192, "causal"), ("fp16", 256, "local")]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype_name,d,mask", PAIR_CASES)
def test_pair_variants_equal_single_cta_kernels_bitwise(dtype_name, d, mask, monkeypatch):
    """The "_pair" variants (a cluster of two CTAs on two query heads of one KV head, sharing each K/V block by
    multicast) compute every tile as the one-CTA kernels do: the same bits in every scheduler mode, on ragged
    batches with 2, 4 or 8 query heads per KV head and unpacked metadata; and within the oracle's tolerance."""
    handlers = (kernel_backend.ffi.load() or {"handlers": {}})["handlers"]
    tag = f"{dtype_name}_d{d}_{mask}"
    if f"fwd_sm90__{tag}_pair__sm90a" not in handlers:
        pytest.skip(f"the library holds no pair variant of {tag}")
    rng = np.random.default_rng([23, len(dtype_name), d, MASKS.index(mask)])
    dtype = DTYPES[dtype_name]
    for _ in range(3):
        c = draw_case(rng, mask)
        c = dataclasses.replace(c, num_heads=c.num_kv_heads * int(rng.choice([2, 4, 8])))
        q, k, v = (jnp.asarray(rng.standard_normal(shape).astype(np.float32), dtype)
                   for shape in ((c.total_q, c.num_heads, d), (c.total_k, c.num_kv_heads, d),
                                 (c.total_k, c.num_kv_heads, d)))
        used = dict(seqused_q=jnp.asarray(c.seqlen_q) if c.seqused else None,
                    seqused_k=jnp.asarray(c.seqlen_k) if c.seqused else None)
        kw = dict(max_seqlen_q=1024, max_seqlen_k=1024, causal=c.causal, window_size=c.window)
        cu_q, cu_k = jnp.asarray(c.cu_q), jnp.asarray(c.cu_k)
        md = jax_fa4.prepare_scheduler_metadata(cu_q, cu_k, num_heads=c.num_heads, num_kv_heads=c.num_kv_heads,
                                                head_dim=d, dtype=dtype, pack_gqa=False, **used, **kw)
        outs = {}
        for paired in (True, False):
            monkeypatch.setattr(kernel_backend, "PAIRED_TILES", paired)
            for mode in validation.SCHEDULER_MODES:
                fn = jax.jit(lambda q, k, v: jax_fa4.varlen_attention(
                    q, k, v, cu_q, cu_k, softcap=c.softcap, return_lse=True, implementation="kernel",
                    scheduler_mode=mode, scheduler_metadata=md, **used, **kw))
                outs[(paired, mode)] = [np.asarray(x.astype(jnp.float32)) for x in fn(q, k, v)]
        first = outs[(False, "dynamic")]
        for key, (out, lse) in outs.items():
            np.testing.assert_array_equal(out, first[0], err_msg=f"{key} {c.describe()}")
            np.testing.assert_array_equal(lse, first[1], err_msg=f"{key} {c.describe()}")
        want = oracle_attention(np.asarray(q.astype(jnp.float32)), np.asarray(k.astype(jnp.float32)),
                                np.asarray(v.astype(jnp.float32)), c.cu_q, c.cu_k,
                                seqused_q=c.seqlen_q if c.seqused else None,
                                seqused_k=c.seqlen_k if c.seqused else None, causal=c.causal, window=c.window,
                                softcap=c.softcap)
        out = outs[(True, "dynamic")][0]
        assert np.all(np.isfinite(out)), f"unwritten output elements: {c.describe()}"
        assert rel_err(out, want["out"]) <= MAX_REL[dtype_name], c.describe()
