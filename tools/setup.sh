#!/usr/bin/env bash
# Sets up a fresh Debian machine with Python 3.11 for icr-tf (idempotent; fast when already done):
#   - Debian's dataset-fashion-mnist (the embedded data), if its files are missing (needs root or sudo);
#   - the virtual environment .venv with the pinned requirements, and the repo on its import path.
set -euo pipefail
cd "$(dirname "$0")/.."

FMNIST_DIR=/usr/share/datasets/fashion-mnist
if [ ! -f "$FMNIST_DIR/t10k-labels-idx1-ubyte.gz" ] && [ -z "${ICR_TF_FASHION_MNIST_DIR:-}" ]; then
  echo "setup: installing Debian's dataset-fashion-mnist"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
STAMP=.venv/.requirements.sha256
WANT=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "setup: installing requirements.txt into .venv (about a minute)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  echo "$WANT" > "$STAMP"
fi
SITE=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
echo "$PWD" > "$SITE/icr_tf_repo.pth"
