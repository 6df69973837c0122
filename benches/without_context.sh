#!/bin/sh
# What `current_call()`'s thread-local costs the real `#[resilient]` call: `hot_path_probe`
# built from the working tree as it is and with `benches/no_context.patch` (the thread-local
# taken off), timed in interleaved rounds on this machine, each round's two binaries back to
# back so that a slower minute slows both.
#
#   sh benches/without_context.sh [rounds]     16 rounds unless told; about 2 s a round
#
# The patched build has a target directory of its own (target/no_context: its first build
# compiles the dependencies again, a few minutes). Cargo names a path package's build by its
# place in the workspace, not by where the workspace is, so the patched copy's runtime built
# into the shared directory would replace the real one there, and, its sources being older
# than that build, stay in every later build of this tree until they are touched.
# Its instructions: CARGO_TARGET_DIR=target/no_context sh benches/instructions.sh
set -eu
root=$(git rev-parse --show-toplevel)
target=${CARGO_TARGET_DIR:-$root/target}
rounds=${1:-16}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"
cargo build --release --example hot_path_probe
cp "$target/release/examples/hot_path_probe" "$work/with"
mkdir "$work/tree"
# -m: the copy's files are newer than any earlier build there, so cargo builds them again.
git ls-files -z | tar --null -T - -cf - | tar -x -m -C "$work/tree"
patch -p1 -s -d "$work/tree" < benches/no_context.patch
CARGO_TARGET_DIR="$target/no_context" cargo build --release --example hot_path_probe \
    --manifest-path "$work/tree/Cargo.toml"
cp "$target/no_context/release/examples/hot_path_probe" "$work/without"
for _ in $(seq "$rounds"); do
    for build in with without; do
        for mode in bare resilient; do
            # The probe's last line, on stderr: "<mode>: <ns> ns per call".
            printf '%s %s %s\n' "$build" "$mode" "$("$work/$build" "$mode" 20000000 2>&1 | tail -n 1 | cut -d' ' -f2)"
        done
    done
done | python3 -c '
import statistics, sys
t = {}
for line in sys.stdin:
    build, mode, ns = line.split()
    t.setdefault((build, mode), []).append(float(ns))
for build in ("with", "without"):
    bare, res = t[(build, "bare")], t[(build, "resilient")]
    print(f"{build:>7} the thread-local: resilient {statistics.median(res):.2f} ns, bare {statistics.median(bare):.2f} ns, "
          f"ratio {statistics.median(r / b for r, b in zip(res, bare)):.2f}x (medians of {len(res)} rounds)")
per_round = [b / a for a, b in zip(t[("with", "resilient")], t[("without", "resilient")])]
print(f"without / with, the same round: {statistics.median(per_round):.3f} (median; quartiles "
      + " to ".join(f"{q:.3f}" for q in statistics.quantiles(per_round, n=4)[::2]) + ")")
'
