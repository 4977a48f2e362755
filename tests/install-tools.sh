#!/usr/bin/env bash
# Installs the emulators and cross compilers the device tests use, when they are missing (the
# table TOOLS below): QEMU's system emulators for the Cortex-M and RISC-V boards, its user-mode
# emulators for the aarch64 and armv7 Linux builds, the GNU Arm bare-metal C compiler for the C
# firmware, and the aarch64/armv7 Linux C cross compilers with their C libraries.
#
#   tests/install-tools.sh            install what is missing (apt-get; sudo when not root)
#   tests/install-tools.sh --dry-run  print the plan, change nothing (no root needed)
#
# What it may change on the machine (README, "What the test command may change"):
# - it installs the missing packages of TOOLS with --no-install-recommends (the emulators'
#   recommends are GUI, firmware and block-driver packages the tests never use);
# - when the installed qemu-utils is newer than the emulators the package lists offer (a machine
#   with qemu-utils from backports: qemu-utils 10 breaks qemu-system-common < 8), apt would remove
#   qemu-utils. Instead the script replaces it with the build that matches the emulators
#   (qemu-img and qemu-nbd stay installed, at that version) and says so before doing it. It
#   removes nothing: if apt still wants to remove a package, it stops and says what to install
#   by hand.
# Exit status: 0 when every tool is present afterwards (or in --dry-run, when the plan is
# sound), 1 with one `nnblob:` line otherwise. A machine that has every tool is not touched.
set -euo pipefail

# What the tests use (a command on PATH, or a file for a C library), and the Debian/Ubuntu
# package that provides it.
TOOLS=(
  "qemu-system-arm|qemu-system-arm"                                  # Cortex-M boards
  "qemu-system-riscv32|qemu-system-misc"                             # RISC-V board
  "qemu-aarch64|qemu-user"                                           # aarch64 Linux (SBCs)
  "qemu-arm|qemu-user"                                               # armv7 Linux (SBCs)
  "arm-none-eabi-gcc|gcc-arm-none-eabi"                              # the C firmware
  "make|make"                                                        # its Makefile
  "aarch64-linux-gnu-gcc|gcc-aarch64-linux-gnu"                      # linker and C, aarch64
  "/usr/aarch64-linux-gnu/include/stdio.h|libc6-dev-arm64-cross"     # its C library
  "arm-linux-gnueabihf-gcc|gcc-arm-linux-gnueabihf"                  # linker and C, armv7
  "/usr/arm-linux-gnueabihf/include/stdio.h|libc6-dev-armhf-cross"   # its C library
)
# The package whose version a qemu package in the way is pinned to (below).
EMULATORS=qemu-system-arm

say() { printf 'install-tools: %s\n' "$*"; }
fail() {
  printf 'nnblob: %s\n' "$*" >&2
  exit 1
}
by_hand="install them by hand (QEMU 7.2 or later; the Debian/Ubuntu packages are in tests/install-tools.sh; docs/DEVICE.md)"

# apt, behind functions so that tests/install-tools-test.sh can answer with recorded output.
apt_policy() { apt-cache policy "$1"; }
apt_madison() { apt-cache madison "$1"; }
apt_simulate() { apt-get install -s -y --no-install-recommends "$@" 2>&1; }
installed_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

# Reads `apt-cache policy` output on stdin; prints the candidate version, nothing for "(none)".
policy_candidate() {
  awk '$1 == "Candidate:" && $2 != "(none)" { print $2; exit }'
}

# Reads `apt-get -s install` output on stdin; prints each package the plan would remove.
simulated_removals() {
  awk '$1 == "Remv" { print $2 }'
}

# Reads `apt-cache madison` output on stdin; succeeds when version $1 is offered.
madison_offers() {
  awk -F'|' -v want="$1" '{ gsub(/ /, "", $2) } $2 == want { found = 1 } END { exit !found }'
}

# Succeeds when tool $1 (a command, or an absolute path) is present.
present() {
  if [[ $1 == /* ]]; then [ -e "$1" ]; else command -v "$1" >/dev/null 2>&1; fi
}

# Prints the packages (one per line, each once, in TOOLS' order) of the missing tools.
missing_packages() {
  local entry
  for entry in "${TOOLS[@]}"; do
    present "${entry%%|*}" || printf '%s\n' "${entry#*|}"
  done | awk '!seen[$0]++'
}

# Plans the install of packages "$@": prints the apt-get install arguments, one per line,
# after a first line "plain" (nothing else changes) or "pinned PKG INSTALLED TARGET ..."
# (PKG is replaced by the TARGET build instead of being removed). Fails with one line when
# apt cannot install them without removing a package.
plan_install() {
  local sim target removed pins=() notes=() unresolved=() r
  sim=$(apt_simulate "$@") || fail "apt-get cannot install $*: $(tail -n 1 <<<"$sim"); $by_hand"
  removed=$(simulated_removals <<<"$sim")
  if [ -z "$removed" ]; then
    echo plain
    printf '%s\n' "$@"
    return
  fi
  # The emulators' own version: a removed qemu package is kept at that build instead.
  target=$(apt_policy "$EMULATORS" | policy_candidate)
  for r in $removed; do
    if [ -n "$target" ] && [[ $r == qemu-* ]] && apt_madison "$r" | madison_offers "$target"; then
      pins+=("$r=$target")
      notes+=("$r" "$(installed_version "$r")" "$target")
    else
      unresolved+=("$r")
    fi
  done
  [ ${#unresolved[@]} -eq 0 ] ||
    fail "installing $* would remove ${unresolved[*]}; $by_hand"
  sim=$(apt_simulate --allow-downgrades "$@" "${pins[@]}") ||
    fail "apt-get cannot install $* ${pins[*]}: $(tail -n 1 <<<"$sim"); $by_hand"
  removed=$(simulated_removals <<<"$sim")
  [ -z "$removed" ] || fail "installing $* would remove $(paste -sd' ' <<<"$removed"); $by_hand"
  echo "pinned ${notes[*]}"
  printf '%s\n' --allow-downgrades "$@" "${pins[@]}"
}

main() {
  local dry_run=0 missing plan args=() sudo="" header
  case "${1:-}" in
    --dry-run) dry_run=1 ;;
    "") ;;
    *) fail "unknown argument '$1' (usage: tests/install-tools.sh [--dry-run])" ;;
  esac
  mapfile -t missing < <(missing_packages)
  if [ ${#missing[@]} -eq 0 ]; then
    say "every tool is installed ($(qemu-system-arm --version | head -n 1)); nothing to do"
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 ||
    fail "${missing[*]} missing and apt-get not found: $by_hand"
  if [ "$(id -u)" -ne 0 ] && [ $dry_run -eq 0 ]; then
    command -v sudo >/dev/null 2>&1 || fail "${missing[*]} missing; apt-get needs root and sudo is not found: $by_hand"
    sudo=sudo
  fi
  if [ $dry_run -eq 0 ]; then
    say "apt-get update"
    $sudo apt-get update -qq || fail "apt-get update failed; $by_hand"
  fi
  plan=$(plan_install "${missing[@]}")
  header=$(head -n 1 <<<"$plan")
  mapfile -t args < <(tail -n +2 <<<"$plan")
  if [[ $header == pinned* ]]; then
    # shellcheck disable=SC2086 # triples of package, installed version, target version
    set -- ${header#pinned }
    while [ $# -ge 3 ]; do
      say "the installed $1 ${2:-(unknown version)} cannot stay beside $EMULATORS $3, the version the package lists offer:"
      say "  replacing $1 with its $3 build instead of letting apt remove it"
      shift 3
    done
  fi
  if [ $dry_run -eq 1 ]; then
    say "would run: apt-get install -y --no-install-recommends ${args[*]}"
    return 0
  fi
  say "apt-get install -y --no-install-recommends ${args[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${args[@]}" ||
    fail "apt-get install ${args[*]} failed; $by_hand"
  mapfile -t missing < <(missing_packages)
  [ ${#missing[@]} -eq 0 ] || fail "${missing[*]} installed but what the tests use from it is not found; $by_hand"
  say "installed ${args[*]} ($(qemu-system-arm --version | head -n 1))"
}

# Sourced by the test for its functions; run, it installs.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
