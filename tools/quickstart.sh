#!/usr/bin/env bash
# The main job on a fresh machine: set up, train the default model (Fashion-MNIST, SNDCGAN, ICR), show its
# samples, and export its generator for TF Serving (prints "export: <model_dir>/export/<version>").
# Re-running resumes (or, once the budget is reached, only reports); the export is a new version only when the
# checkpoint is new, an existing version is never rewritten. Extra arguments go to tools/train.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
MODEL_DIR="${MODEL_DIR:-runs/fashion_mnist_icr}"
.venv/bin/python tools/train.py --gin_file=fashion_mnist/icr.gin --model_dir="$MODEL_DIR" "$@"
.venv/bin/python tools/export.py --model_dir="$MODEL_DIR" --reuse_existing
