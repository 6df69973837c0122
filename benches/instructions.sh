#!/bin/sh
# Instructions per call, exact: callgrind's total for 200,000 calls minus that for 100,000,
# divided by 100,000 (start-up cancels out). Build first:
#   cargo build --release --example hot_path_probe
set -eu
bin=${CARGO_TARGET_DIR:-target}/release/examples/hot_path_probe
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for which in bare floor resilient recorder exporter forced; do
    a=$(count "$which" 100000)
    b=$(count "$which" 200000)
    echo "$which: $(((b - a) / 100000)) instructions per call"
done
