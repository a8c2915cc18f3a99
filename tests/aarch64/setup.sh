#!/usr/bin/env bash
# Build (once) an aarch64 Python 3.11 userland for running the edge runtime under qemu user-mode
# emulation: Debian bookworm's arm64 python3.11 packages unpacked with dpkg -x (no debootstrap),
# aarch64 wheels of numpy, OpenCV and ai-edge-litert installed by the host's pip with --target,
# and a Raspberry Pi 4 /proc/cpuinfo (LiteRT segfaults in Interpreter() reading the host's x86
# one; qemu's -L prefers ROOT/proc/cpuinfo). Cached in $1, so reruns take seconds.
#
#   tests/aarch64/setup.sh CACHE_DIR HOST_PIP
set -euo pipefail
CACHE="${1:?usage: setup.sh CACHE_DIR HOST_PIP}"
PIP="${2:?usage: setup.sh CACHE_DIR HOST_PIP}"
ROOT="$CACHE/root"
SITE="$CACHE/site"
STAMP="$CACHE/.ready-v1"
[ -f "$STAMP" ] && { echo "aarch64 userland cached in $CACHE"; exit 0; }

if ! command -v qemu-aarch64-static >/dev/null; then
  apt-get update -q && apt-get install -y -q qemu-user-static
fi
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  apt-get update -q
elif ! apt-cache show libc6:arm64 >/dev/null 2>&1; then
  apt-get update -q
fi

rm -rf "$CACHE" && mkdir -p "$CACHE/debs" "$ROOT/proc"
PACKAGES="python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libexpat1 zlib1g libffi8
  libssl3 libbz2-1.0 liblzma5 libgcc-s1 libstdc++6 libcrypt1 libuuid1 libsqlite3-0 libncursesw6 libtinfo6
  libreadline8 libnsl2 libtirpc3 libdb5.3 libgdbm6"
(cd "$CACHE/debs" && for p in $PACKAGES; do apt-get download -q "$p:arm64"; done) 2>&1 | grep -v "unsandboxed" || true
for deb in "$CACHE"/debs/*.deb; do dpkg -x "$deb" "$ROOT"; done

cat > "$ROOT/proc/cpuinfo" <<'CPUINFO'
processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

Hardware	: BCM2835
Revision	: c03111
Model		: Raspberry Pi 4 Model B Rev 1.1
CPUINFO

# Without manylinux_2_27 pip silently picks the old ai-edge-litert 1.4.
"$PIP" install --quiet --target "$SITE" --only-binary=:all: --python-version 3.11 --implementation cp \
  --abi cp311 --platform manylinux_2_27_aarch64 --platform manylinux2014_aarch64 \
  --platform manylinux_2_17_aarch64 --platform manylinux_2_28_aarch64 \
  "numpy==1.26.4" "opencv-python-headless==4.10.0.84" "ai-edge-litert==2.3.0"
touch "$STAMP"
echo "aarch64 userland ready in $CACHE"
