#!/usr/bin/env bash
# Builds every fuzz target, then runs each for SECONDS, one after another, one job each.
# Exits non-zero if any target crashed (the input is then in artifacts/<target>/).
#
#   ./run-all.sh 240               # AddressSanitizer (the default)
#   SANITIZER=none ./run-all.sh 60 # where ASan does not work
#
# Each target's libFuzzer output is kept in target/fuzz-logs/<target>.log.
set -uo pipefail

secs=${1:?usage: run-all.sh SECONDS}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
# cargo-fuzz passes -Z flags; this lets the stable toolchain accept them.
export RUSTC_BOOTSTRAP=1
# -a: debug assertions and overflow checks on, as in the tests.
build=(-a -s "${SANITIZER:-address}")

cargo run --quiet --example seeds || exit 2
cargo fuzz build "${build[@]}" || exit 2

mkdir -p target/fuzz-logs
crashed=()
for t in $(cargo fuzz list); do
    echo "== $t: ${secs}s"
    # -jobs=1 runs one libFuzzer job in a child process that logs to ./fuzz-0.log, so
    # run from a scratch folder under target/ (git ignores it).
    work="target/fuzz-logs/$t.d"
    rm -rf "$work" && mkdir -p "$work"
    (cd "$work" && cargo fuzz run --fuzz-dir "$here" "${build[@]}" "$t" -- \
        -max_total_time="$secs" -jobs=1 >/dev/null 2>&1)
    rc=$?
    mv "$work/fuzz-0.log" "target/fuzz-logs/$t.log" 2>/dev/null
    rm -rf "$work"
    grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs' "target/fuzz-logs/$t.log" | tail -2
    if [ "$rc" -ne 0 ]; then
        echo "!! $t failed (exit $rc); see target/fuzz-logs/$t.log and artifacts/$t/"
        grep -E "panicked at|^SUMMARY" -A1 "target/fuzz-logs/$t.log" | head -6
        for f in $(grep -o "Test unit written to [^ ]*" "target/fuzz-logs/$t.log" | cut -d' ' -f5); do
            echo "input $f:"
            od -An -v -tx1 "$f" | tr -d ' \n' | head -c 4096
            echo
        done
        crashed+=("$t")
    fi
done

if [ "${#crashed[@]}" -ne 0 ]; then
    echo "crashed: ${crashed[*]}"
    exit 1
fi
echo "no crashes"
