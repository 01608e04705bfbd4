#!/bin/bash
# mkvar.sh NAME STAGES_FOR_PAIR PRODUCER_REGS_FOR_PAIR -> tree /tmp/src_NAME from main's working tree, built to .carry/NAME
set -e
N=$1; S=$2; R=$3
rm -rf /tmp/src_$N; mkdir -p /tmp/src_$N; cp -r /work/main/jax_fa4 /work/main/csrc_shim /work/main/pyproject.toml /tmp/src_$N/
cd /tmp/src_$N
python3 - "$S" "$R" <<'PY'
import sys, pathlib
S, R = sys.argv[1], sys.argv[2]
p = pathlib.Path("jax_fa4/kernels/bwd_dkdv_sm90.py"); s = p.read_text()
s = s.replace("    max_stages = 2 if pass_ in DQ_PASSES else 3", f"    max_stages = ({S} if ctas == 2 else 2) if pass_ in DQ_PASSES else 3")
s = s.replace("            cute.arch.setmaxregister_decrease(PRODUCER_REGS)", f"            cute.arch.setmaxregister_decrease({R} if self.ctas == 2 else PRODUCER_REGS)")
p.write_text(s)
PY
grep -n "max_stages = \|setmaxregister_decrease" jax_fa4/kernels/bwd_dkdv_sm90.py
/tmp/build_red.sh /tmp/src_$N $N 2>&1 | tail -1
