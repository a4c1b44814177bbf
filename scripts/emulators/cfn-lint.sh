#!/usr/bin/env bash
# Installs cfn-lint (CloudFormation's own linter, SAM transform included)
# once into a cache outside the clone and prints the path of its command.
set -euo pipefail
VERSION=1.58.0
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/cloudfn-test/cfn-lint-$VERSION"
if [ ! -x "$CACHE/venv/bin/cfn-lint" ] || [ ! -f "$CACHE/.installed" ]; then
    echo "installing cfn-lint $VERSION into $CACHE (once)" >&2
    rm -rf "$CACHE"
    mkdir -p "$CACHE"
    python3 -m venv "$CACHE/venv"
    "$CACHE/venv/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$VERSION" >&2
    touch "$CACHE/.installed"
fi
echo "$CACHE/venv/bin/cfn-lint"
