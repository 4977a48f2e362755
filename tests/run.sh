#!/usr/bin/env bash
# Every test nnblob has, from a fresh clone: installs what the tests need, then runs
# formatting, lints, the unit and accuracy suites and the bare-metal builds.
# Python is never needed here: fixtures are committed (tests/fixtures/make_fixtures.py makes them).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain components and targets"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
targets=(thumbv7em-none-eabihf thumbv6m-none-eabi thumbv7m-none-eabi riscv32imac-unknown-none-elf)
# Linux SBCs (64-bit and 32-bit Arm), run under QEMU's user-mode emulators (.cargo/config.toml).
linux_targets=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
installed=$(rustup target list --installed)
for t in "${targets[@]}" "${linux_targets[@]}"; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

step "QEMU and cross compilers for the device tests (tests/install-tools.sh: what it may change on the machine)"
# First, so that a machine where they cannot be installed stops here, not after the build.
tests/install-tools-test.sh
tests/install-tools.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (host, all targets)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "firmware on bare-metal targets"
for t in "${targets[@]}"; do
  cargo build --locked -p nnblob-firmware --target "$t" --release
  cargo clippy --locked -p nnblob-firmware --target "$t" -- -D warnings
  # The C API: the static library a C firmware links (docs/C.md).
  cargo build --locked -p nnblob-capi --target "$t" --release
  cargo clippy --locked -p nnblob-capi --target "$t" -- -D warnings
done

step "the engine on Linux SBCs: its tests under qemu-aarch64 and qemu-arm; the C API's libraries (docs/C.md)"
for t in "${linux_targets[@]}"; do
  cargo test --locked -p nnblob-firmware --target "$t"
  cargo build --locked -p nnblob-capi --target "$t" --release
  cargo clippy --locked -p nnblob-firmware -p nnblob-capi --target "$t" -- -D warnings
done

step "cargo test"
cargo test --workspace --locked

step "the C API on Linux SBCs: examples/run_blob.c cross-built for aarch64 and armv7, the host's bits (docs/C.md)"
cargo test --locked -p nnblob-capi --test c_api -- --ignored --nocapture

step "firmware under QEMU: device outputs equal the host's bit for bit (docs/DEVICE.md)"
cargo fmt --manifest-path firmware/qemu/Cargo.toml -- --check
cargo test --locked -p nnblob-tests --test qemu_device -- --ignored --nocapture

step "the C firmware under QEMU: a C program linking the C API on the Cortex-M4F, the host's bits (docs/C.md)"
cargo test --locked -p nnblob-tests --test qemu_c -- --ignored --nocapture

step "nnblob itself on Linux SBCs: the CLI cross-built for aarch64 and armv7 under qemu-user, the host's blobs and bits (docs/C.md)"
cargo test --locked -p nnblob-tests --test sbc_cli -- --ignored --nocapture --test-threads 1

step "catalog models under QEMU through nnblob emit, bit for bit; engine code sizes (docs/EMIT.md, docs/DEVICE.md)"
cargo test --locked -p nnblob-tests --test qemu_catalog -- --ignored --nocapture
cargo test --locked -p nnblob --test cli_emit_sizes -- --ignored --nocapture
