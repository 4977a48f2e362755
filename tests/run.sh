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
installed=$(rustup target list --installed)
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (host, all targets)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "firmware on bare-metal targets"
for t in "${targets[@]}"; do
  cargo build --locked -p nnblob-firmware --target "$t" --release
  cargo clippy --locked -p nnblob-firmware --target "$t" -- -D warnings
done

step "cargo test"
cargo test --workspace --locked

step "firmware under QEMU: device outputs equal the host's bit for bit (docs/DEVICE.md)"
# Debian/Ubuntu packages: qemu-system-arm for the Cortex-M boards, qemu-system-misc for RISC-V.
qemu_packages=()
command -v qemu-system-arm >/dev/null 2>&1 || qemu_packages+=(qemu-system-arm)
command -v qemu-system-riscv32 >/dev/null 2>&1 || qemu_packages+=(qemu-system-misc)
if [ ${#qemu_packages[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update && $sudo apt-get install -y "${qemu_packages[@]}"
fi
cargo fmt --manifest-path firmware/qemu/Cargo.toml -- --check
cargo test --locked -p nnblob-tests --test qemu_device -- --ignored --nocapture

step "catalog models under QEMU through nnblob emit, bit for bit; engine code sizes (docs/EMIT.md, docs/DEVICE.md)"
cargo test --locked -p nnblob-tests --test qemu_catalog -- --ignored --nocapture
cargo test --locked -p nnblob --test cli_emit_sizes -- --ignored --nocapture
