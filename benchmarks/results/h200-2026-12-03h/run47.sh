# forward kernel times, interleaved: B (main) / N128 (D = 128 without a mask: 128 keys, 2 Q stages, order + lazy)
# / G (D >= 192: softmax ahead of the PV wait, lazy rescale when masked; order slots per warp)
export XLA_PYTHON_CLIENT_PREALLOCATE=false
mkdir -p /tmp/n128 && cp -r jax_fa4 /tmp/n128/ && sed -i 's/return 128, 128 if masked else 176/return 128, 128/' /tmp/n128/jax_fa4/metadata.py
grep -n "return 128, 128$" /tmp/n128/jax_fa4/metadata.py
date +%T
bd() { pp=.; [ $1 = N128 ] && pp=/tmp/n128:.; PYTHONPATH=$pp JAX_FA4_LIBRARY=$PWD/.carry/$1/libjax_fa4_kernels.so timeout 80 python3 -m benchmarks.kernel_breakdown --fwd-only --only "${@:2}" 2>&1 | grep "us of kernels\|rror" | sed "s/^/$1 /"; }
for lib in B N128 G B N128 G; do bd $lib dense-4x8192 packed-train dense-16x2048 mixed-serve; done | tee $OUT/interleaved_d128.txt
date +%T
for lib in B G B G; do bd $lib dense-4x8192 packed-train dense-16x2048 mixed-serve --head-dim 256; done | tee $OUT/interleaved_d256.txt
for lib in B G; do bd $lib dense-4x8192 packed-train dense-16x2048 --head-dim 192; done | tee $OUT/interleaved_d192.txt
date +%T
