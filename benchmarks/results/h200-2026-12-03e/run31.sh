# second sample, D = 96: main (B) vs second K/V stage (KV2), interleaved
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
bd() { JAX_FA4_LIBRARY=$PWD/.carry/$1/libjax_fa4_kernels.so timeout 40 python3 -m benchmarks.kernel_breakdown --only packed-train dense-4x8192-causal "${@:2}" 2>&1 | grep "fwd+bwd: .* us of kernels" | sed "s/^/$1 $2 $3 /"; }
for lib in KV2 B KV2 B; do bd $lib --head-dim 96; done | tee $OUT/interleaved_d96.txt
