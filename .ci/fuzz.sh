#!/usr/bin/env bash
# .ci/fuzz.sh - run each cargo-fuzz target in fuzz/ for a bounded time.
#
#     .ci/fuzz.sh            # 30 s per target
#     FUZZ_SECONDS=60 .ci/fuzz.sh
#
# Installs cargo-fuzz (`cargo install --locked cargo-fuzz`) if it is missing; if that
# fails (no network, no C++ compiler for libFuzzer), prints why and exits 0, because
# tests/fuzz_smoke.rs already runs a bounded fuzz in `cargo test`. A crash, panic,
# timeout or out-of-memory in a target exits non-zero and leaves the input in
# fuzz/artifacts/<target>/.
#
# Uses `--sanitizer none`, which works on stable Rust (AddressSanitizer needs nightly
# flags, and adds little for safe Rust: panics and overflow checks are caught anyway).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${FUZZ_SECONDS:-30}"
targets=(spec_parse cifar10_bin npy cifar_python)

if ! cargo fuzz --version >/dev/null 2>&1; then
    if ! cargo install --locked cargo-fuzz; then
        echo "fuzz.sh: cannot install cargo-fuzz; skipping (tests/fuzz_smoke.rs still ran)" >&2
        exit 0
    fi
fi

# Seed corpora from valid inputs shipped in the repository.
seeds=fuzz/target/seeds
rm -rf "$seeds"
mkdir -p "$seeds"/{spec_parse,cifar10_bin,npy,cifar_python}
cp sweeps/*.toml "$seeds/spec_parse/"
head -c 3073 data/cifar10-sample/data_batch_1.bin >"$seeds/cifar10_bin/one"
head -c 6146 data/cifar10-sample/test_batch.bin >"$seeds/cifar10_bin/two"
cp tests/fixtures/cifar-10-batches-py2-style/data_batch_1 "$seeds/cifar_python/py2"
cp tests/fixtures/cifar-10-batches-py-mini/test_batch "$seeds/cifar_python/py3"
python3 - "$seeds/npy" <<'PY'
import struct, sys
def npy(descr, shape, data):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data
out = sys.argv[1]
open(f"{out}/x_f32", "wb").write(npy("<f4", "(2, 3)", struct.pack("<6f", *range(6))))
open(f"{out}/x_u8", "wb").write(npy("|u1", "(2, 2)", bytes([0, 1, 2, 255])))
open(f"{out}/y_i64", "wb").write(npy("<i8", "(3,)", struct.pack("<3q", 0, 9, 4)))
PY

status=0
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    log="fuzz/target/fuzz-$t.log"
    echo "fuzz.sh: $t for ${seconds}s" >&2
    if cargo fuzz run --sanitizer none "$t" "fuzz/corpus/$t" "$seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^(Done|stat::number_of_executed_units)' "$log" >&2 || true
    else
        echo "fuzz.sh: $t FAILED; see $log and fuzz/artifacts/$t/" >&2
        tail -40 "$log" >&2
        status=1
    fi
done
exit "$status"
