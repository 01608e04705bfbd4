"""The benchmark workloads of DESIGN.md section 6, as lists of per-sequence (query, key) lengths.

Lengths are drawn with `numpy.random.default_rng(0)` so every run and every machine measures the same batch.
`quick=True` gives the same shapes of problem at toy sizes (used by the CPU smoke test and `--quick`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from benchmarks import masks


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    group: str                      # dense | packed-train | mixed-serve | long-decode
    seqlens_q: tuple
    seqlens_k: tuple
    causal: bool
    window: tuple = (-1, -1)
    num_heads: int = 32
    num_kv_heads: int = 8
    head_dim: int = 128
    dtype: str = "bfloat16"
    backward: bool = False          # also measure forward + backward
    memory_bound: bool = False      # report TB/s rather than TFLOP/s

    @property
    def batch(self):
        return len(self.seqlens_q)

    @property
    def total_q(self):
        return int(sum(self.seqlens_q))

    @property
    def total_k(self):
        return int(sum(self.seqlens_k))

    @property
    def itemsize(self):
        return np.dtype(self.dtype).itemsize if self.dtype != "bfloat16" else 2

    def cu_seqlens(self):
        cu_q = np.concatenate([[0], np.cumsum(self.seqlens_q)]).astype(np.int32)
        cu_k = np.concatenate([[0], np.cumsum(self.seqlens_k)]).astype(np.int32)
        return cu_q, cu_k

    def flops(self, backward=False):
        f = masks.forward_flops(self.seqlens_q, self.seqlens_k, self.causal, self.window,
                                self.num_heads, self.head_dim)
        return int(f * masks.BACKWARD_FACTOR) if backward else f

    def bytes(self):
        return masks.io_bytes(self.seqlens_q, self.seqlens_k, self.num_heads, self.num_kv_heads,
                              self.head_dim, self.itemsize)

    def describe(self):
        sq, sk = np.asarray(self.seqlens_q), np.asarray(self.seqlens_k)
        return (f"B={self.batch} total_q={self.total_q} total_k={self.total_k} sq[{sq.min()}..{sq.max()}] "
                f"sk[{sk.min()}..{sk.max()}] causal={self.causal} H={self.num_heads} Hk={self.num_kv_heads} "
                f"D={self.head_dim} {self.dtype}")


def packed_inputs(wl, lens_q, lens_k, seed=1):
    """(cu_q, cu_k, q, k, v): random bf16 packed inputs with `wl`'s heads and head dim for these per-sequence
    lengths (a workload's own or a part of them), cu_seqlens as int32 device arrays."""
    import jax
    import jax.numpy as jnp

    lens_q, lens_k = np.asarray(lens_q), np.asarray(lens_k)
    cu_q = jnp.asarray(np.concatenate([[0], np.cumsum(lens_q)]).astype(np.int32))
    cu_k = jnp.asarray(np.concatenate([[0], np.cumsum(lens_k)]).astype(np.int32))
    kq, kk, kv = jax.random.split(jax.random.PRNGKey(seed), 3)
    q = jax.random.normal(kq, (int(lens_q.sum()), wl.num_heads, wl.head_dim), jnp.bfloat16)
    k = jax.random.normal(kk, (int(lens_k.sum()), wl.num_kv_heads, wl.head_dim), jnp.bfloat16)
    v = jax.random.normal(kv, (int(lens_k.sum()), wl.num_kv_heads, wl.head_dim), jnp.bfloat16)
    return cu_q, cu_k, q, k, v


def lognormal_lengths(total_tokens, mean_log=6.5, sigma=1.2, lo=16, hi=8192, seed=0):
    """Packs log-normal document lengths (rounded, clipped to [lo, hi]) until `total_tokens` is reached exactly.

    The last document is trimmed so the lengths sum to `total_tokens` (it may then be shorter than `lo`).
    """
    rng = np.random.default_rng(seed)
    lengths, used = [], 0
    while used < total_tokens:
        n = int(np.clip(np.rint(rng.lognormal(mean_log, sigma)), lo, hi))
        n = min(n, total_tokens - used)
        lengths.append(n)
        used += n
    return tuple(lengths)


def decode_key_lengths(count, lo, hi, seed=0):
    """Key lengths of decode requests, uniform integers in [lo, hi)."""
    return tuple(int(x) for x in np.random.default_rng(seed).integers(lo, hi, size=count))


def _sizes(quick):
    if quick:
        return dict(dense=[(2, 256, True), (2, 256, False), (4, 128, True)], packed_tokens=2048, packed_hi=512, packed_mean_log=4.5,
                    prefills=(2, 256), decodes=(6, 64, 512), long=(4, 2048), heads=(4, 2), head_dim=64)
    return dict(dense=[(4, 8192, False), (4, 8192, True), (16, 2048, True)], packed_tokens=32768, packed_hi=8192, packed_mean_log=6.5,
                prefills=(4, 4096), decodes=(124, 1024, 32768), long=(32, 131072), heads=(32, 8), head_dim=128)


def all_workloads(quick=False):
    """Every workload of DESIGN.md section 6 (scheduler ablation excepted: it reuses packed-train and mixed-serve)."""
    s = _sizes(quick)
    h, hk = s["heads"]
    common = dict(num_heads=h, num_kv_heads=hk, head_dim=s["head_dim"])
    out = []
    for b, n, causal in s["dense"]:
        out.append(Workload(f"dense-{b}x{n}-{'causal' if causal else 'full'}", "dense", (n,) * b, (n,) * b,
                            causal, backward=True, **common))
    lens = lognormal_lengths(s["packed_tokens"], mean_log=s["packed_mean_log"], hi=s["packed_hi"])
    out.append(Workload(f"packed-train-{s['packed_tokens']}", "packed-train", lens, lens, True, backward=True,
                        **common))
    npre, lpre = s["prefills"]
    ndec, klo, khi = s["decodes"]
    dec_k = decode_key_lengths(ndec, klo, khi)
    out.append(Workload(f"mixed-serve-{npre}x{lpre}+{ndec}dec", "mixed-serve", (lpre,) * npre + (1,) * ndec,
                        (lpre,) * npre + dec_k, True, **common))
    nlong, klong = s["long"]
    out.append(Workload(f"long-decode-{nlong}x{klong}", "long-decode", (1,) * nlong, (klong,) * nlong, True,
                        memory_bound=True, **common))
    return out


def select(workloads, only, head_dim=None):
    """Workloads whose name or group starts with one of `only` (all when `only` is empty); with `head_dim`, run at
    that head dim instead (the name gets -d<D>)."""
    chosen = [w for w in workloads if not only or any(w.name.startswith(o) or w.group.startswith(o) for o in only)]
    if head_dim:
        chosen = [dataclasses.replace(w, head_dim=head_dim, name=f"{w.name}-d{head_dim}") for w in chosen]
    return chosen
