#!/bin/sh
# Instructions per call, exact (callgrind). Build first:
#   cargo build --release --example hot_path_probe
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
#   sh benches/instructions.sh ours   a call with the Prometheus recorder: our code and the
#                                     probe's loop only, per function, over 200,000 calls
#                                     (not the exporter's updates nor the clock reads: they
#                                     vary, and the `exporter` mode counts the updates)
set -eu
bin=${CARGO_TARGET_DIR:-target}/release/examples/hot_path_probe
if [ "${1:-}" = ours ]; then
    out=$(mktemp)
    trap 'rm -f "$out"' EXIT
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" recorder 200000 >/dev/null 2>&1
    # Ours: the loop and what is inlined into it (Context::enter), our out-of-line functions,
    # and the drop of the call's timer slot (ours, though its code is std's).
    callgrind_annotate --threshold=100 "$out" |
        awk '/current_thread::Context::enter|resilience_runtime::|drop_in_place<core::option::Option<core::pin::Pin<alloc::boxed::Box<tokio::time::sleep::Sleep/ {
                 gsub(",", "", $1); s += $1 }
             END { printf "ours: %d instructions per call with the recorder (our code and the loop; not the exporter nor the clock reads)\n", s / 200000 }'
    exit
fi
if [ "${1:-}" = open ]; then
    out=$(mktemp)
    trap 'rm -f "$out"' EXIT
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" open 200000 >/dev/null 2>&1
    # The loop and everything inlined into it live in Context::enter (the runtime's poll of
    # main); what stays out of line of ours is named resilience_runtime::*.
    callgrind_annotate "$out" |
        awk '/current_thread::Context::enter|resilience_runtime::/ { gsub(",", "", $1); s += $1 }
             END { printf "open: %d instructions per rejection (our code and the loop; the clock read not)\n", s / 200000 }'
    exit
fi
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for which in bare floor resilient once recorder exporter forced; do
    a=$(count "$which" 100000)
    b=$(count "$which" 200000)
    echo "$which: $(((b - a) / 100000)) instructions per call"
done
