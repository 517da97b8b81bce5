#!/usr/bin/env bash
# `make fuzz`: runs every cargo-fuzz target for a bounded time, then prints executions, new
# corpus entries and crashes per target. Exits non-zero if any target crashed.
#
#   FUZZ_SECONDS=60     time per target
#   FUZZ_TARGETS="..."  a subset (default: all of `cargo fuzz list`)
#   FUZZ_ARGS="..."     extra `cargo fuzz run` flags, e.g. "--sanitizer none"
#
# libFuzzer with AddressSanitizer needs nightly's -Z flags: `+nightly` when rustup has a
# nightly toolchain, else stable with RUSTC_BOOTSTRAP=1 (which lets stable accept them).
# Inputs: fuzz/seeds/<target> (committed, hand-written) and fuzz/corpus/<target> (grown
# here, not committed). Crashes land in fuzz/artifacts/<target>; replay one with
# `cargo +nightly fuzz run <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")/.."

each=${FUZZ_SECONDS:-60}
extra=${FUZZ_ARGS:-}
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is missing; install it with: cargo install cargo-fuzz" >&2
    exit 1
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    echo "fuzz: no nightly toolchain; using stable with RUSTC_BOOTSTRAP=1"
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
targets=${FUZZ_TARGETS:-$("${fuzz[@]}" list)}

mkdir -p fuzz/logs
# shellcheck disable=SC2086 # $extra is a list of flags
"${fuzz[@]}" build $extra

failed=0
summary=()
for t in $targets; do
    mkdir -p "fuzz/corpus/$t" "fuzz/seeds/$t"
    log="fuzz/logs/$t.log"
    echo "fuzz: $t for ${each}s"
    status=ok
    # shellcheck disable=SC2086
    if ! "${fuzz[@]}" run $extra "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$each" -print_final_stats=1 -timeout=10 >"$log" 2>&1; then
        status="CRASH (see $log and fuzz/artifacts/$t)"
        failed=1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    added=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -n1)
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    summary+=("$(printf '%-18s %12s %10s %8s %8s  %s' "$t" "${runs:-?}" "${rate:-?}" "${added:-?}" "$corpus" "$status")")
done

echo
printf '%-18s %12s %10s %8s %8s  %s\n' target executions "execs/s" new corpus result
printf '%s\n' "${summary[@]}"
exit "$failed"
