#!/usr/bin/env bash
# Install the digit reader on Raspberry Pi OS (bookworm, 64-bit): apt's camera stack, a venv that
# sees it, and one LiteRT interpreter. Idempotent: a second run changes nothing.
#
#   edge/deploy/install-pi.sh [--dry-run] [--prefix DIR] [--user NAME] [--no-service]
#
# picamera2, OpenCV and numpy come from apt (picamera2 is built against apt's numpy; a numpy 2
# in the venv would break it and simplejpeg), so the venv uses --system-site-packages and pip is
# constrained to apt's numpy. The interpreter: ai-edge-litert, else tflite-runtime.
set -euo pipefail

PREFIX=/opt/digit-edge
RUN_USER=digits
DRY_RUN=0
SERVICE=1
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --prefix) PREFIX="${2:?--prefix needs a directory}"; shift ;;
    --user) RUN_USER="${2:?--user needs a name}"; shift ;;
    --no-service) SERVICE=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-pi.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

run() {
  if [ "$DRY_RUN" = 1 ]; then
    printf 'would run:'; printf ' %q' "$@"; printf '\n'
  else
    "$@"
  fi
}

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(python3-picamera2 python3-opencv python3-numpy python3-venv python3-pip)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  run $SUDO apt-get update
  run $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "apt packages already installed: ${APT_PACKAGES[*]}"
fi

if ! id "$RUN_USER" >/dev/null 2>&1; then
  run $SUDO useradd --system --create-home --groups video "$RUN_USER"
fi

run $SUDO mkdir -p "$PREFIX"
run $SUDO cp -r "$SRC/edge" "$SRC/models" "$PREFIX/"

VENV="$PREFIX/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  run $SUDO python3 -m venv --system-site-packages "$VENV"
fi

# Pin numpy (and OpenCV) to what apt installed, so pip never replaces them in the venv.
CONSTRAINTS="$PREFIX/constraints.txt"
numpy_version="$(python3 -c 'import numpy; print(numpy.__version__)' 2>/dev/null || echo)"
if [ -n "$numpy_version" ]; then
  if [ "$DRY_RUN" = 1 ]; then
    echo "would write $CONSTRAINTS: numpy==$numpy_version"
  else
    echo "numpy==$numpy_version" | $SUDO tee "$CONSTRAINTS" >/dev/null
  fi
fi
constraint_args=()
if [ -n "$numpy_version" ]; then constraint_args=(-c "$CONSTRAINTS"); fi

if [ "$DRY_RUN" = 0 ] && "$VENV/bin/python" -c 'import ai_edge_litert.interpreter' 2>/dev/null; then
  echo "ai-edge-litert already installed"
elif [ "$DRY_RUN" = 0 ] && "$VENV/bin/python" -c 'import tflite_runtime.interpreter' 2>/dev/null; then
  echo "tflite-runtime already installed"
else
  if ! run $SUDO "$VENV/bin/pip" install --quiet "${constraint_args[@]}" "ai-edge-litert>=2.1"; then
    echo "ai-edge-litert not installable here; falling back to tflite-runtime" >&2
    run $SUDO "$VENV/bin/pip" install --quiet "${constraint_args[@]}" "tflite-runtime==2.14.0"
  fi
fi

run $SUDO chown -R "$RUN_USER" "$PREFIX"

if [ "$SERVICE" = 1 ]; then
  if [ ! -f /etc/default/digit-reader ]; then
    if [ "$DRY_RUN" = 1 ]; then
      echo "would write /etc/default/digit-reader"
    else
      printf '%s\n' '# Flags for python -m edge (see python -m edge --help); restart the service after editing.' \
        'DIGIT_READER_ARGS=--source auto --on-change --json' \
        '# The live view (off by default): a page of the annotated frames and readings at http://PI:8080/.' \
        '# Beyond this Pi it needs a token; every route but /healthz then asks for it (?token= or Bearer).' \
        '#DIGIT_READER_ARGS=--source auto --on-change --json --serve 0.0.0.0:8080' \
        '#DIGIT_READER_TOKEN=change-me' | $SUDO tee /etc/default/digit-reader >/dev/null
    fi
  fi
  unit="$SRC/edge/deploy/digit-reader.service"
  if [ "$DRY_RUN" = 1 ]; then
    echo "would install $unit as /etc/systemd/system/digit-reader.service (User=$RUN_USER, prefix $PREFIX)"
  else
    sed -e "s#/opt/digit-edge#$PREFIX#g" -e "s#^User=digits#User=$RUN_USER#" "$unit" |
      $SUDO tee /etc/systemd/system/digit-reader.service >/dev/null
  fi
  run $SUDO systemctl daemon-reload
  run $SUDO systemctl enable --now digit-reader.service
fi

echo "done: $PREFIX (try: $VENV/bin/python -m edge --source auto --max-frames 10)"
