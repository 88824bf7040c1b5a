#!/usr/bin/env bash
# Sets up everything `npm test` and `npm run demo` need on a fresh Debian machine:
# npm dependencies, and the Debian packages of the test bed (QEMU, the Arm GCC
# toolchain that builds our fixtures, gdb-multiarch for independent read-back).
# Linux-only on purpose: the library and CLI themselves never shell out.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'bootstrap: %s\n' "$*" >&2; }

# Node version (package.json engines: >= 20.19)
node -e '
  const [maj, min] = process.versions.node.split(".").map(Number);
  if (maj < 20 || (maj === 20 && min < 19)) {
    console.error(`bootstrap: Node ${process.versions.node} is too old; rspflash needs Node >= 20.19`);
    process.exit(1);
  }'

# npm dependencies: install when missing or when the lock file changed since.
if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund >&2
fi

# Debian packages of the test bed: command → package
declare -A needed=(
  [qemu-system-arm]=qemu-system-arm
  [arm-none-eabi-gcc]=gcc-arm-none-eabi
  [gdb-multiarch]=gdb-multiarch
)
missing=()
for cmd in "${!needed[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${needed[$cmd]}")
done
# newlib gives the cross compiler its headers; harmless when already there.
if command -v arm-none-eabi-gcc >/dev/null 2>&1 && [ ! -d /usr/lib/arm-none-eabi/include ]; then
  missing+=(libnewlib-arm-none-eabi)
fi

if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing: ${missing[*]} — this is not a Debian/Ubuntu machine; install them with your package manager."
    exit 1
  fi
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    say "missing: ${missing[*]}. Run as root or install them:  sudo apt-get install ${missing[*]}"
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" libnewlib-arm-none-eabi >&2
fi
say "ok: $(node --version), $(qemu-system-arm --version | head -n1)"
