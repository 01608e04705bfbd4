"""A small transformer trained on packed variable-length documents with jax_fa4 and optax.

Why it exists: it is the shape of a real training step with packed sequences — scheduler metadata made once per
step and threaded into every layer (a `lax.scan` over stacked layer parameters, each layer under `jax.checkpoint`),
`jax.grad` through `varlen_attention`, optax updates, all inside one `jax.jit`. The task needs attention inside
each document and nothing across documents: a document alternates between its own two random tokens, so from
its third token on the next token is the other token of the pair, which only attention to earlier tokens of the
same document can find (the current token alone says nothing about it, and attention leaking across documents
would mix pairs).

    python examples/train_packed.py --steps 100 [--implementation xla|kernel]

On an SM90 GPU with the kernel library built, the default runs the forward and backward kernels (100 steps:
12 s on an H100, 80 s on the reference path, same losses); elsewhere the pure-JAX reference.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jax_fa4


@dataclasses.dataclass(frozen=True)
class Config:
    vocab: int = 64
    d_model: int = 128
    num_heads: int = 2
    num_kv_heads: int = 1
    head_dim: int = 64
    layers: int = 2
    tokens: int = 256          # packed tokens per step (static)
    max_len: int = 96          # longest document (static max_seqlen)
    lr: float = 3e-3


def packed_batch(rng, cfg: Config):
    """Documents of random lengths packed into cfg.tokens rows: (tokens [T], cu_seqlens [B+1], target mask [T])."""
    lengths = []
    while sum(lengths) < cfg.tokens:
        lengths.append(int(rng.integers(1, cfg.max_len + 1)))
    lengths[-1] -= sum(lengths) - cfg.tokens
    cu = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    tokens = np.empty(cfg.tokens, np.int32)
    for start, n in zip(cu[:-1], lengths):
        # Every document alternates between its own two random tokens: a b a b ...
        pair = rng.choice(cfg.vocab, 2, replace=False)
        tokens[start:start + n] = pair[np.arange(n) % 2]
    has_next = np.ones(cfg.tokens, bool)
    has_next[cu[1:] - 1] = False          # the last token of a document predicts nothing
    return tokens, cu, has_next


def init_params(key, cfg: Config):
    keys = jax.random.split(key, 7)
    hq, hk, d, m = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim, cfg.d_model, 4 * cfg.d_model

    def dense(k, shape):
        return jax.random.normal(k, (cfg.layers,) + shape, jnp.float32) / np.sqrt(shape[0])

    return {
        "embed": jax.random.normal(keys[0], (cfg.vocab, d), jnp.float32) * 0.5,
        "layers": {"wq": dense(keys[1], (d, hq)), "wkv": dense(keys[2], (d, 2 * hk)), "wo": dense(keys[3], (hq, d)),
                   "w1": dense(keys[4], (d, m)), "w2": dense(keys[5], (m, d))},
        "unembed": jax.random.normal(keys[6], (d, cfg.vocab), jnp.float32) / np.sqrt(d),
    }


def _rms(x):
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + 1e-6)


def logits_fn(params, tokens, cu, md, cfg: Config, implementation):
    t = tokens.shape[0]

    def layer(x, p):
        h = _rms(x)
        q = (h @ p["wq"]).reshape(t, cfg.num_heads, cfg.head_dim).astype(jnp.bfloat16)
        k, v = jnp.split((h @ p["wkv"]).reshape(t, 2 * cfg.num_kv_heads, cfg.head_dim).astype(jnp.bfloat16), 2,
                         axis=1)
        o = jax_fa4.varlen_attention(q, k, v, cu, cu, max_seqlen_q=cfg.max_len, max_seqlen_k=cfg.max_len,
                                     causal=True, scheduler_metadata=md, implementation=implementation)
        x = x + o.reshape(t, -1).astype(jnp.float32) @ p["wo"]
        return x + jax.nn.gelu(_rms(x) @ p["w1"]) @ p["w2"], None

    x, _ = jax.lax.scan(jax.checkpoint(layer), params["embed"][tokens], params["layers"])
    return _rms(x) @ params["unembed"]


def make_step(cfg: Config, implementation=None):
    optimizer = optax.adam(cfg.lr)

    def loss_fn(params, tokens, cu, has_next, md):
        logits = logits_fn(params, tokens, cu, md, cfg, implementation)
        target = jnp.roll(tokens, -1)
        nll = -jnp.take_along_axis(jax.nn.log_softmax(logits[:-1]), target[:-1, None], axis=-1)[:, 0]
        mask = has_next[:-1].astype(jnp.float32)
        return jnp.sum(nll * mask) / jnp.sum(mask)

    @jax.jit
    def step(params, opt_state, tokens, cu, has_next):
        # Once per step, shared by every layer (implementation=None: the prepare kernel on a GPU, jnp elsewhere).
        md = jax_fa4.prepare_scheduler_metadata(
            cu, cu, max_seqlen_q=cfg.max_len, max_seqlen_k=cfg.max_len, num_heads=cfg.num_heads,
            num_kv_heads=cfg.num_kv_heads, head_dim=cfg.head_dim, causal=True, total_q=tokens.shape[0],
            implementation="xla" if implementation == "xla" else None)
        loss, grads = jax.value_and_grad(loss_fn)(params, tokens, cu, has_next, md)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return optimizer, step


def train(steps=100, implementation=None, cfg: Config = Config(), seed=0, printer=None):
    """Runs `steps` training steps on fresh packed batches; returns the per-step losses."""
    optimizer, step = make_step(cfg, implementation)
    params = init_params(jax.random.PRNGKey(seed), cfg)
    opt_state = optimizer.init(params)
    rng = np.random.default_rng(seed)
    losses = []
    for i in range(steps):
        tokens, cu, has_next = packed_batch(rng, cfg)
        params, opt_state, loss = step(params, opt_state, jnp.asarray(tokens), jnp.asarray(cu),
                                       jnp.asarray(has_next))
        losses.append(float(loss))
        if printer and (i % 10 == 0 or i == steps - 1):
            printer(f"step {i:4d}  loss {losses[-1]:.4f}")
    return losses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--implementation", choices=("auto", "xla", "kernel"), default="auto")
    args = parser.parse_args(argv)
    impl = None if args.implementation == "auto" else args.implementation
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}, implementation={args.implementation}")
    start = time.perf_counter()
    losses = train(args.steps, impl, printer=print)
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
