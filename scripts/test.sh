#!/usr/bin/env bash
# The test command: set up (all extras) and run the whole suite, real-data tests included
# when ../shared/data is present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh clarel,dev,docs,ray
. .venv/bin/activate
python -m pytest -q -p no:cacheprovider "$@"
