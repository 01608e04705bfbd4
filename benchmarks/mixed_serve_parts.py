"""Where mixed-serve's forward time goes: `python -m benchmarks.mixed_serve_parts` (SM90 GPU with the kernel library).

Why: mixed-serve is one call of 4 causal prefills and 124 decodes. If the decode tiles streamed K/V fast enough on
part of the GPU, the prefill tiles would run beside them and the call would take about as long as its decodes
alone. This prints the profiler's forward-kernel time (and K/V bytes over it) for the whole call per scheduler mode,
for its decode part and its prefill part alone, and for the decode part and long-decode on fewer CTAs (the grid
and the metadata's SM count overridden): decode bytes over time on N CTAs is what one CTA streams, times N.
"""

import argparse
import contextlib

import jax
import numpy as np

import jax_fa4
from jax_fa4 import device_info
from benchmarks import timing, workloads


@contextlib.contextmanager
def sm_count(n):
    """device_info.sm_count() returns n (None: the device's own) while tracing: the forward grid and the split
    policy then plan for n SMs."""
    original = device_info.sm_count
    if n is not None:
        device_info.sm_count = lambda device=0: n
    try:
        yield
    finally:
        device_info.sm_count = original


def forward_kernel_us(wl, lens_q, lens_k, mode="auto", ctas=None):
    """(forward kernel microseconds per call, K/V bytes read) of one jitted varlen_attention call; None without a
    GPU kernel in the trace."""
    lens_q, lens_k = np.asarray(lens_q), np.asarray(lens_k)
    cu_q, cu_k, q, k, v = workloads.packed_inputs(wl, lens_q, lens_k)
    fn = jax.jit(lambda q, k, v: jax_fa4.varlen_attention(
        q, k, v, cu_q, cu_k, max_seqlen_q=int(lens_q.max()), max_seqlen_k=int(lens_k.max()), causal=wl.causal,
        implementation="kernel", scheduler_mode=mode))
    with sm_count(ctas):
        jax.block_until_ready(fn(q, k, v))  # traced and compiled under the override
    r = timing.kernel_time(fn, (q, k, v), calls=10)
    if r is None:  # no GPU kernel in the trace (no GPU)
        return None
    fwd = sum(n * us for name, (n, us) in r["kernels"].items() if "Fwd" in name)
    return fwd, 2 * int(lens_k.sum()) * wl.num_kv_heads * wl.head_dim * 2


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.mixed_serve_parts", description=__doc__.split("\n\n")[0])
    ap.add_argument("--ctas", type=int, nargs="*", default=[99, 66, 44], help="reduced grids to try")
    args = ap.parse_args(argv)
    groups = {w.group: w for w in workloads.all_workloads()}
    mixed, long_decode = groups["mixed-serve"], groups["long-decode"]
    npre = sum(1 for s in mixed.seqlens_q if s > 1)
    q_pre, k_pre = mixed.seqlens_q[:npre], mixed.seqlens_k[:npre]
    q_dec, k_dec = mixed.seqlens_q[npre:], mixed.seqlens_k[npre:]

    def show(label, result):
        if result is None:
            raise SystemExit("no GPU kernel in the profiler trace: run this on an SM90 GPU with the kernel library")
        us, nbytes = result
        print(f"{label:40s} forward kernel {us:8.1f} us   K/V {nbytes / 1e9:5.2f} GB -> {nbytes / us / 1e6:5.2f} TB/s",
              flush=True)

    print(f"device: {jax.devices()[0].device_kind}")
    for mode in ("auto", "dynamic", "dynamic-two-ended"):
        show(f"mixed-serve, {mode}", forward_kernel_us(mixed, mixed.seqlens_q, mixed.seqlens_k, mode))
    show("decode part alone", forward_kernel_us(mixed, q_dec, k_dec))
    show("prefill part alone", forward_kernel_us(mixed, q_pre, k_pre))
    for n in args.ctas:
        show(f"decode part, {n} CTAs", forward_kernel_us(mixed, q_dec, k_dec, ctas=n))
        show(f"prefill part, {n} CTAs", forward_kernel_us(mixed, q_pre, k_pre, ctas=n))
    for n in (None, *args.ctas):
        show(f"long-decode, {n or 'all'} CTAs", forward_kernel_us(long_decode, long_decode.seqlens_q,
                                                                   long_decode.seqlens_k, ctas=n))


if __name__ == "__main__":
    main()
