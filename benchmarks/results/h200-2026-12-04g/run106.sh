#!/bin/bash
# session 42, prepared, not run: the wheel on the GPU machine. .carry/whl holds the wheel of main (at the commit
# that added setup.py) with main 81f9723's full library (.carry/FULL; main's kernels have not changed since), made
# with `pip wheel --no-deps` from a copy of the sources. Installed into a scratch directory and run from outside the
# checkout, so nothing comes from the source tree. carry: .carry/whl
set -e
python -m pip install --no-deps -q --target /tmp/site .carry/whl/jax_fa4-*.whl
cd /tmp
PYTHONPATH=/tmp/site python -m jax_fa4 info 2>&1 | tee $OUT/wheel_info.txt
PYTHONPATH=/tmp/site timeout 200 python -m jax_fa4 demo --repeats 2 2>&1 | tee $OUT/wheel_demo.txt | tail -15
