"""bwdtime.py (../h200-2026-12-04b/) with the SM count the library sees forced to N, so the backward's grid is N
CTAs: label, N, workloads. (As run: .carry/exp/bwdsms.py beside bwdtime.py.)"""
import pathlib
import runpy
import sys

import jax_fa4.device_info as di

label, n, names = sys.argv[1], int(sys.argv[2]), sys.argv[3]
di.sm_count = lambda device=0: n
here = pathlib.Path(__file__).resolve().parent
sys.argv = [sys.argv[0], f"{label} grid {n}", names]
runpy.run_path(str(here.parent / "h200-2026-12-04b" / "bwdtime.py"), run_name="__main__")
