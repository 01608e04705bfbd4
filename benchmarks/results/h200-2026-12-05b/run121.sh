#!/bin/bash
# session 45, prepared, not run: the second command (about 5-6 minutes). ncu of the D = 128 dense full forward and
# one-kernel backward on .carry/KLB (../cpu-2026-12-05/run107.sh), then the wheel from outside the checkout
# (../h200-2026-12-04g/run106.sh). carry: .carry/KLB .carry/whl
bash benchmarks/results/cpu-2026-12-05/run107.sh KLB
bash benchmarks/results/h200-2026-12-04g/run106.sh
