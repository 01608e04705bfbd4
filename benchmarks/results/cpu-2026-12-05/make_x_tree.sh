#!/bin/bash
# session 44: `bash make_x_tree.sh DIR REF [PATCH ...]` makes DIR/ at the repository root, an untracked (so carried
# to the device) copy of git ref REF with the patches applied (patch -p1: `git apply` run inside the repository
# skips files below a subfolder). A device command then runs a branch's host code with `cd DIR`. Remove DIR/
# before committing.
#   x_sk (run115.sh / run116.sh): HEAD ../h200-2026-12-04f/bwd_longest_first.patch ../h200-2026-12-04f/bwd_stream_k.patch
#   x_lf (../h200-2026-12-05/run118.sh): wip/bwd-longest-first-2
set -e
dir=${1:?target folder}; ref=${2:?git ref}; shift 2
cd "$(git rev-parse --show-toplevel)"
patches=(); for p in "$@"; do patches+=("$(realpath "$p")"); done
rm -rf "$dir" && mkdir "$dir" && git archive "$ref" | tar -x -C "$dir"
for p in "${patches[@]}"; do (cd "$dir" && patch -p1 -s < "$p"); done
echo "$dir/ ready ($ref${patches:+ + ${#patches[@]} patches})"
