#!/usr/bin/env bash
# mypy over the whole package as it installs (deepdiva.core, deepdiva.presets, ...).
# The source folders map onto deepdiva.* through pyproject's package-dir, which mypy cannot
# follow from an editable install, so it checks a temporary tree of symlinks laid out as installed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/deepdiva"
ln -s "$repo"/deepdiva/*.py "$tree/deepdiva/"
for pkg in core presets training daemon models; do
  ln -s "$repo/$pkg" "$tree/deepdiva/$pkg"
done
cd "$tree"
"$repo/.venv/bin/mypy" --config-file "$repo/pyproject.toml" --cache-dir "$repo/.mypy_cache" -p deepdiva
