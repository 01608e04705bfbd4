#!/bin/bash
# session 46: `bash ptx.sh TREE VARIANT_INDEX [MODULE]` compiles one kernel variant of the tree TREE (a worktree of
# a branch) with the CuTe DSL keeping its PTX and SASS, runs ptxas -v on the PTX (spills, C7512 serialisation) and
# counts HGMMA, the lone wgmma waits (WARPGROUP.DEPBAR ... 0x0) and LDL/STL. About 5 s for a backward variant.
# The SASS with labels is left in /tmp/pq/ for ../cpu-2026-12-05/sass_loop.py. MODULE defaults to bwd_dkdv_sm90
# (variant 13 = bf16, D = 128, no mask, dkdvdq).
wt=${1:?tree}; idx=${2:?variant index}; mod=${3:-bwd_dkdv_sm90}
py=/work/main/.venv/bin/python
bin=$($py -c "import nvidia.cu13, os; print(os.path.join(nvidia.cu13.__path__[0], 'bin'))")
rm -rf /tmp/pq && mkdir -p /tmp/pq
cd "$wt" && CUTE_DSL_KEEP=ptx,sass CUTE_DSL_DUMP_DIR=/tmp/pq CUTE_DSL_ARCH=sm_90a PYTHONPATH=. \
  $py -m jax_fa4.build.compile_one $mod $idx sm_90a k /tmp/pqo > /tmp/pq.log 2>&1 || { tail -30 /tmp/pq.log; exit 1; }
f=$(ls /tmp/pq/*.ptx)
/usr/local/cuda/bin/ptxas -arch=sm_90a -v "$f" -o /tmp/pq/x.cubin 2>&1 | grep -E "C7512|C7510|spill|Used" \
  | sed 's/for the function.*//'
$bin/cuobjdump -sass /tmp/pq/x.cubin > /tmp/pq/x.sass
echo "HGMMA $(grep -c HGMMA /tmp/pq/x.sass)  DEPBAR0 $(grep -c 'WARPGROUP.DEPBAR.LE gsb0, 0x0' /tmp/pq/x.sass)" \
  "LDL/STL $(grep -c 'LDL\|STL' /tmp/pq/x.sass) instr $(grep -c '^        /\*[0-9a-f]*\*/' /tmp/pq/x.sass)"
