"""fwd+bwd of dense 4 x 8192, 16 heads, head dim 128, bf16 (full and causal) on the kernel path with
deterministic=False (one backward kernel, dQ added atomically) and deterministic=True (two fixed-order kernels),
beside cuDNN's fused attention, in one process: `python -m benchmarks.backward_modes` on an SM90 GPU.

Each line is the minimum of 5 timed calls of the jitted gradient (after one warm-up call); FLOPs count the forward
(4 B S^2 H D, halved under a causal mask) times 3.5 for forward + backward."""

import time

import numpy as np

import jax
import jax.numpy as jnp

import jax_fa4

B, S, H, D = 4, 8192, 16, 128


def _min_time(fn, *args, reps=5):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    rng = np.random.default_rng(0)
    cu = jnp.asarray(np.arange(B + 1) * S, jnp.int32)
    q, k, v = (jnp.asarray(rng.standard_normal((B * S, H, D)), jnp.bfloat16) for _ in range(3))
    dout = jnp.asarray(rng.standard_normal((B * S, H, D)), jnp.float32)
    print(f"device: {jax.devices()[0].device_kind}")
    for causal in (False, True):
        flops = 4 * B * S * S * H * D * 3.5 * (0.5 if causal else 1)
        results = {}
        for deterministic in (False, True):
            def loss(q, k, v, deterministic=deterministic):
                o = jax_fa4.varlen_attention(q, k, v, cu, cu, max_seqlen_q=S, max_seqlen_k=S, causal=causal,
                                             implementation="kernel", deterministic=deterministic)
                return jnp.sum(o.astype(jnp.float32) * dout)
            results[f"jax_fa4 deterministic={deterministic}"] = _min_time(
                jax.jit(jax.grad(loss, argnums=(0, 1, 2))), q, k, v)

        def cudnn_loss(q, k, v):
            shape = (B, S, H, D)
            o = jax.nn.dot_product_attention(q.reshape(shape), k.reshape(shape), v.reshape(shape), is_causal=causal,
                                             implementation="cudnn")
            return jnp.sum(o.astype(jnp.float32) * dout.reshape(shape))
        results["cudnn"] = _min_time(jax.jit(jax.grad(cudnn_loss, argnums=(0, 1, 2))), q, k, v)
        for name, t in results.items():
            print(f"causal={causal} {name}: fwd+bwd {t * 1e3:.2f} ms, {flops / t / 1e12:.0f} TFLOP/s, "
                  f"{results['cudnn'] / t:.2f}x cuDNN")


if __name__ == "__main__":
    main()
