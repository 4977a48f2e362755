#!/usr/bin/env bash
# Tests the decisions of tests/install-tools.sh without root and without changing the machine:
# apt is answered with output recorded from apt itself on a new machine (tests/fixtures/apt/:
# qemu-utils 10 from backports installed, Debian bookworm's qemu-system-* 7.2 in the lists).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=tests/install-tools.sh
source ./install-tools.sh
fixtures=fixtures/apt
failures=0

check() { # name expected actual
  if [ "$2" = "$3" ]; then
    printf 'ok   %s\n' "$1"
  else
    printf 'FAIL %s\n  expected: %s\n  actual:   %s\n' "$1" "$2" "$3"
    failures=$((failures + 1))
  fi
}

# Recorded apt: a simulation with --allow-downgrades (the pinned request) removes nothing;
# without it, apt's own plan removes qemu-utils.
apt_policy() { cat "$fixtures/policy-$1.txt"; }
apt_madison() { cat "$fixtures/madison-$MADISON_FOR_QEMU_UTILS.txt"; }
apt_simulate() {
  if [ "$1" = --allow-downgrades ]; then cat "$fixtures/$PINNED_SIMULATION.txt"; else cat "$fixtures/$FIRST_SIMULATION.txt"; fi
}
installed_version() { echo 1:10.0.2+ds-2+deb13u1~bpo12+1; }

check "the candidate version from apt-cache policy" \
  "1:7.2+dfsg-7+deb12u18+b2" "$(policy_candidate <"$fixtures/policy-qemu-system-arm.txt")"
check "the packages apt's plan removes" \
  "qemu-utils" "$(simulated_removals <"$fixtures/simulate-conflict.txt")"
check "a plan that removes nothing" "" "$(simulated_removals <"$fixtures/simulate-pinned.txt")"
check "madison offers the emulators' build of qemu-utils" yes \
  "$(madison_offers 1:7.2+dfsg-7+deb12u18+b2 <"$fixtures/madison-qemu-utils.txt" && echo yes || echo no)"
check "madison does not offer a build it does not list" no \
  "$(madison_offers 1:7.2+dfsg-7 <"$fixtures/madison-qemu-utils.txt" && echo yes || echo no)"

# What is missing, as packages: each once (qemu-user provides two emulators), in the table's order.
present() { [ "$1" = qemu-system-arm ] || [ "$1" = /usr/aarch64-linux-gnu/include/stdio.h ]; }
check "the packages of the missing tools, each once" \
  "qemu-system-misc qemu-user gcc-arm-none-eabi make gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-armhf-cross" \
  "$(missing_packages | tr '\n' ' ' | sed 's/ $//')"
present() { true; }
check "nothing missing: no package" "" "$(missing_packages)"

# A plain Debian/Ubuntu machine: apt's plan removes nothing, the install is the packages alone.
FIRST_SIMULATION=simulate-pinned PINNED_SIMULATION=simulate-pinned MADISON_FOR_QEMU_UTILS=qemu-utils
check "nothing in the way: a plain install" \
  "plain qemu-system-arm qemu-system-misc" "$(plan_install qemu-system-arm qemu-system-misc | tr '\n' ' ' | sed 's/ $//')"

# A new machine with qemu-utils 10: qemu-utils is replaced by the emulators' build, not removed.
FIRST_SIMULATION=simulate-conflict
check "qemu-utils 10 in the way: pinned to the emulators' build" \
  "pinned qemu-utils 1:10.0.2+ds-2+deb13u1~bpo12+1 1:7.2+dfsg-7+deb12u18+b2 --allow-downgrades qemu-system-arm qemu-system-misc qemu-utils=1:7.2+dfsg-7+deb12u18+b2" \
  "$(plan_install qemu-system-arm qemu-system-misc | tr '\n' ' ' | sed 's/ $//')"

# The build is not offered: the script stops, one line, non-zero, instead of removing qemu-utils.
MADISON_FOR_QEMU_UTILS=libc6
out=$( (plan_install qemu-system-arm qemu-system-misc) 2>&1) && status=0 || status=$?
check "no matching build: exit status 1" 1 "$status"
check "no matching build: one line naming the package and what to do" \
  "nnblob: installing qemu-system-arm qemu-system-misc would remove qemu-utils; install them by hand (QEMU 7.2 or later; the Debian/Ubuntu packages are in tests/install-tools.sh; docs/DEVICE.md)" \
  "$out"

# The pinned plan still removes a package: stop rather than remove it.
MADISON_FOR_QEMU_UTILS=qemu-utils PINNED_SIMULATION=simulate-conflict
out=$( (plan_install qemu-system-arm qemu-system-misc) 2>&1) && status=0 || status=$?
check "a pinned plan that still removes: exit status 1" 1 "$status"
check "a pinned plan that still removes: one line" \
  "nnblob: installing qemu-system-arm qemu-system-misc would remove qemu-utils; install them by hand (QEMU 7.2 or later; the Debian/Ubuntu packages are in tests/install-tools.sh; docs/DEVICE.md)" \
  "$out"

[ $failures -eq 0 ] || {
  echo "install-tools-test: $failures failed"
  exit 1
}
echo "install-tools-test: all passed"
