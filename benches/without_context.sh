#!/bin/sh
# What `current_call()`'s thread-local costs the real `#[resilient]` call: `hot_path_probe`
# built from the working tree as it is and with `benches/no_context.patch` (the thread-local
# taken off), timed in interleaved rounds on this machine, each round's two binaries back to
# back so that a slower minute slows both.
#
#   sh benches/without_context.sh [rounds]     16 rounds unless told; 1–2 s a round
#
# The patched build has a target directory of its own (no_context inside the target directory;
# its first build compiles the dependencies again, a few minutes). Cargo names a path package's build by its
# place in the workspace, not by where the workspace is, so the patched copy's runtime built
# into the shared directory would replace the real one there, and, its sources being older
# than that build, stay in every later build of this tree until they are touched.
# Its instructions, with the default target directory:
#   CARGO_TARGET_DIR=target/no_context sh benches/instructions.sh
set -eu
command -v python3 >/dev/null || { echo "without_context.sh: needs python3" >&2; exit 1; }
root=$(git rev-parse --show-toplevel)
rounds=${1:-16}
# 4 or more: with 2 or 3, statistics.quantiles (exclusive) extrapolates past the data.
case $rounds in '' | *[!0-9]* | 0* | [1-3]) echo "without_context.sh: rounds must be 4 or more" >&2; exit 1 ;; esac
# Cargo's own answer, before the cd: CARGO_TARGET_DIR relative to where this was started (as
# cargo reads it), or a target-dir from a config, not a guess at <root>/target.
target=$(cargo metadata --no-deps --format-version 1 --manifest-path "$root/Cargo.toml" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export CARGO_TARGET_DIR="$target" # absolute now: the builds below run from the root
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM HUP # dash runs the EXIT trap on exit, not on a signal's default
cd "$root"
mkdir "$work/tree"
# The tracked files as they are in the working tree (an untracked source file the real build
# uses makes the copy's build fail). Through files, not a pipe, so that a failing tar (a
# tracked file deleted) stops the script: sh has no pipefail.
git ls-files -z > "$work/files"
# -m: the copy's files are newer than any earlier build there, so cargo builds them again.
tar --null -T "$work/files" -cf "$work/tree.tar"
tar -x -m -f "$work/tree.tar" -C "$work/tree"
# Before any build, so a patch that no longer applies (or is already applied) fails at once.
patch -p1 -s --forward --batch -d "$work/tree" < benches/no_context.patch
cargo build --release --example hot_path_probe
cp "$target/release/examples/hot_path_probe" "$work/with"
CARGO_TARGET_DIR="$target/no_context" cargo build --release --example hot_path_probe \
    --manifest-path "$work/tree/Cargo.toml"
cp "$target/no_context/release/examples/hot_path_probe" "$work/without"
# To a file, not a pipe: a probe that fails stops the script here instead of leaving python
# fewer rounds. The order of the two builds alternates from round to round.
for i in $(seq "$rounds"); do
    if [ $((i % 2)) -eq 1 ]; then order="with without"; else order="without with"; fi
    for build in $order; do
        for mode in bare resilient; do
            out=$("$work/$build" "$mode" 20000000 2>&1) ||
                { printf '%s\n' "$out" >&2; echo "without_context.sh: $build $mode failed" >&2; exit 1; }
            printf '%s %s %s\n' "$build" "$mode" "$(printf '%s\n' "$out" | tail -n 1)"
        done
    done
done > "$work/times"
python3 -c '
import re, statistics, sys
t = {}
for line in open(sys.argv[1]):
    # The probe'"'"'s last line, on stderr: "<mode>: <ns> ns per call".
    m = re.fullmatch(r"(with|without) (bare|resilient) (bare|resilient): ([0-9]+(?:\.[0-9]+)?) ns per call\n", line)
    if not m or m[2] != m[3]:
        sys.exit(f"without_context.sh: unexpected probe output: {line!r}")
    t.setdefault((m[1], m[2]), []).append(float(m[4]))
for build in ("with", "without"):
    bare, res = t[(build, "bare")], t[(build, "resilient")]
    print(f"{build:>7} the thread-local: resilient {statistics.median(res):.2f} ns, bare {statistics.median(bare):.2f} ns "
          f"(medians of {len(res)} rounds; the two builds'"'"' bare loops run the same code: see their ratio below)")
for mode in ("resilient", "bare"):
    per_round = [b / a for a, b in zip(t[("with", mode)], t[("without", mode)])]
    print(f"{mode}: without / with, the same round: {statistics.median(per_round):.3f} (median; quartiles "
          + " to ".join(f"{q:.3f}" for q in statistics.quantiles(per_round, n=4)[::2]) + ")")
' "$work/times"
