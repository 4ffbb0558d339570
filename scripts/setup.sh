#!/usr/bin/env bash
# Create .venv and install zsbench with the given extras (default: clarel). Idempotent.
#   bash scripts/setup.sh [EXTRAS]      e.g. bash scripts/setup.sh clarel,dev,docs,ray
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-clarel}"
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# torchvision must match torch exactly; on x86_64 Linux these two install from the local
# wheelhouse when present, otherwise from PyPI.
python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1" || python -m pip install --quiet torch torchvision
python -m pip install --quiet -e ".[${extras}]"
