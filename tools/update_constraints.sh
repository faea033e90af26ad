#!/usr/bin/env bash
# Remake constraints.txt, the tested set: a fresh venv gets the newest versions pyproject.toml
# allows (dev extra, so every package the tests and the bundle use), then its `pip freeze`.
# Run the tests against it (tools/test_latest.sh does) before committing the new file.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(mktemp -d /tmp/wv-constraints.XXXXXX)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip setuptools wheel
"$venv/bin/pip" install -q -e '.[dev]'
{
    echo "# The tested set: every package the dev extra installs, at the version CI and the README's"
    echo "# commands use (pip install -c constraints.txt ...). Remade with tools/update_constraints.sh;"
    echo "# tools/test_latest.sh runs the tests against the newest versions pyproject.toml allows."
    echo "# $("$venv/bin/python" -c 'import platform; print("Python", platform.python_version(), platform.system(), platform.machine())'), $(date +%F)."
    "$venv/bin/pip" freeze --exclude-editable | grep -v '^waste.vision'
    echo "pip==$("$venv/bin/python" -c 'import pip; print(pip.__version__)')"
    echo "setuptools==$("$venv/bin/python" -c 'import setuptools; print(setuptools.__version__)')"
    echo "wheel==$("$venv/bin/python" -c 'import wheel; print(wheel.__version__)')"
} > constraints.txt.new
mv constraints.txt.new constraints.txt
echo "constraints.txt remade; run the tests (bash .ci/run) before committing it"
