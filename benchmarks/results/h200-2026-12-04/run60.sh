# The landed library (main e26482c, built by scripts/setup.sh): the whole GPU test suite in one run.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/B/libjax_fa4_kernels.so
date +%T
timeout 560 python3 -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/ > $OUT/gpu_tests_all_main.txt 2>&1
echo tests rc=$?; tail -4 $OUT/gpu_tests_all_main.txt
date +%T
