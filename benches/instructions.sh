#!/bin/sh
# Instructions per call, exact (callgrind). Build first:
#   cargo build --release --example hot_path_probe
# Counts do not show stalls (stop 45: a forced-open rejection one instruction shorter took
# twice the time, a load spanning two stores): time a hot-path change too, with the probe's
# own loop (`time target/release/examples/hot_path_probe forced 50000000`) or the bench.
#
#   sh benches/instructions.sh        every mode but `open`: callgrind's total for 200,000 calls
#                                     minus that for 100,000, divided by 100,000 (start-up
#                                     cancels out)
#   sh benches/instructions.sh open   a rejection by a breaker opened by failures: our code and
#                                     the probe's loop only, per function, over 200,000
#                                     rejections. Not by difference: under valgrind quanta finds
#                                     no usable TSC and reads the OS clock, whose cost is not the
#                                     one a real machine pays, and the failing calls that open
#                                     the breaker sleep a varying number of timer turns.
#   sh benches/instructions.sh ours   a call with the Prometheus recorder: our code (our
#                                     metric storage's histogram included, not the facade's
#                                     counter increments) and the probe's loop only, per
#                                     function, over 200,000 calls (not the clock reads: they
#                                     vary under valgrind)
set -eu
bin=${CARGO_TARGET_DIR:-target}/release/examples/hot_path_probe
# Our code and the probe's loop, per function: the loop and what is inlined into it (main's
# future, polled inside the runtime's Context::enter or out of line as main's closure,
# depending on how the build inlines it) and what of ours stays out of line.
ours='current_thread::Context::enter|hot_path_probe::main::|resilience_runtime::'
per_function() { # mode, and a pattern for more functions to count as ours
    out=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "$1" 200000 >/dev/null 2>&1
    callgrind_annotate --threshold=100 "$out" |
        awk -v re="$ours${2:+|$2}" '$0 ~ re { gsub(",", "", $1); s += $1 } END { printf "%d", s / 200000 }'
    rm -f "$out"
}
if [ "${1:-}" = ours ]; then
    # With the drop of the call's timer slot: ours, though its code is std's (its type,
    # `call::Timer`, is ours, so `ours` matches it too; named for clarity).
    n=$(per_function recorder 'drop_in_place<core::option::Option<core::pin::Pin<alloc::boxed::Box<resilience_runtime::call::Timer')
    echo "ours: $n instructions per call with the recorder (our code and the loop; not the clock reads)"
    exit
fi
if [ "${1:-}" = open ]; then
    echo "open: $(per_function open) instructions per rejection (our code and the loop; the clock read not)"
    exit
fi
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for which in bare layer minimum stores_only floor floor_without_context context_only resilient once recorder exporter forced; do
    a=$(count "$which" 100000)
    b=$(count "$which" 200000)
    echo "$which: $(((b - a) / 100000)) instructions per call"
done
