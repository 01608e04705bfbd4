#!/bin/bash
# session 44: x_sk/ at the repository root, an untracked (so carried) copy of HEAD with the backward's longest-first
# order and stream-K tail patches applied, for run115.sh / run116.sh. `git apply` run inside the repository skips
# files below a subfolder, hence `patch -p1`. Remove x_sk/ before committing.
set -e
cd "$(git rev-parse --show-toplevel)"
p=benchmarks/results/h200-2026-12-04f
rm -rf x_sk && mkdir x_sk && git archive HEAD | tar -x -C x_sk
(cd x_sk && patch -p1 -s < ../$p/bwd_longest_first.patch && patch -p1 -s < ../$p/bwd_stream_k.patch)
echo "x_sk/ ready"
