#!/usr/bin/env bash
# tinytrain's two entry points. Both install what is missing first.
#   ./go emulate   the main job (tox -e emulate): compile, build, emulate, report
#   ./go test      the tests (tox: lint, pytest, Robot Framework)
# Root (or sudo) is needed only to apt-get install the Arm toolchain and QEMU when they are missing.
set -euo pipefail
cd "$(dirname "$0")"
APT_PKGS="qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi"

need_apt=()
command -v qemu-system-arm >/dev/null || need_apt+=(qemu-system-arm)
command -v arm-none-eabi-gcc >/dev/null || need_apt+=(gcc-arm-none-eabi)
[ -e /usr/lib/arm-none-eabi/newlib/libc.a ] || [ -e /usr/lib/arm-none-eabi/lib/libc.a ] || need_apt+=(libnewlib-arm-none-eabi)
command -v gcc >/dev/null || need_apt+=(gcc libc6-dev)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "==> installing with apt (needs root): ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

TOX=tox
if ! command -v tox >/dev/null; then
  if [ ! -x .tools/bin/tox ]; then
    echo "==> installing tox into .tools/ (no root needed)"
    python3 -m venv .tools
    .tools/bin/pip install -q 'tox>=4'
  fi
  TOX="$PWD/.tools/bin/tox"
fi

cmd="${1:-}"; shift || true
case "$cmd" in
  emulate) exec "$TOX" -e emulate -- "$@" ;;
  test)    exec "$TOX" "$@" ;;
  bench)   exec "$TOX" -e bench -- "$@" ;;
  *) echo "usage: ./go emulate [args] | ./go test [tox args] | ./go bench"; exit 2 ;;
esac
