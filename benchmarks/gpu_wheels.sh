#!/usr/bin/env bash
# Wheels that benchmarks/gpu_check.py needs on a lent GPU machine and that its image lacks.
#
# The machine (see the device tool's KINDS.md) has Python 3.12 with its own CUDA torch, numpy, scipy, h5py,
# pyyaml, tqdm, psutil, mpmath, attrs, packaging, fsspec and xxhash, and no network. Importing lhcflow also
# needs the packages below (lhcflow.classifier imports the event model, which imports Pythia 8, FastJet,
# uproot, awkward and vector; the NIS and MEM code imports madnis and vegas; the config loader jsonschema).
# This script downloads them here, at the versions of this environment, for that Python and platform, into
# .whl/ (ignored through .git/info/exclude); about 48 MB, which travels with the 4 MB working tree
# (limit 64 MiB). Run it from the repository root with the project's environment active:
#
#   bash benchmarks/gpu_wheels.sh                 # PYVER=3.12 WHEEL_DIR=.whl by default
#
# then, on the device (carry [".whl"]), see README.md, "Benchmarks":
#
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
#       .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 && \
#       python3 benchmarks/gpu_check.py --device cuda --commit <hash> --out $OUT/gpu.json
set -euo pipefail

PYVER=${PYVER:-3.12}
WHEEL_DIR=${WHEEL_DIR:-.whl}
PACKAGES=(pythia8mc fastjet awkward awkward-cpp uproot cramjam vector madnis vegas gvar
          jsonschema jsonschema-specifications referencing rpds-py)

if [[ "$WHEEL_DIR" == ".whl" ]]; then
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
fi
specs=()
for name in "${PACKAGES[@]}"; do
    version=$(python -c "import importlib.metadata as m; print(m.version('$name'))")
    specs+=("$name==$version")
done
mkdir -p "$WHEEL_DIR"
python -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$WHEEL_DIR" "${specs[@]}"
ls "$WHEEL_DIR"
du -sh "$WHEEL_DIR"
