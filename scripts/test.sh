#!/usr/bin/env bash
# Install everything the tests need (Debian packages when possible, Python packages into .venv),
# then lint with ruff and run the whole test suite. Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3-venv libsndfile1 libportaudio2 jackd2 amsynth chromium)
if command -v apt-get >/dev/null 2>&1; then
  SUDO=()
  [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test,vst,train,cluster]"

echo "== ruff, mypy"
.venv/bin/ruff check .
bash scripts/typecheck.sh

# Two processes: the tests that drive JACK (MIDI ports, recording) run apart from the rest, so
# libjack/rtmidi never share a process with TensorFlow and DawDreamer (segfaults seen otherwise).
run_pytest() {
  set +e
  .venv/bin/python -m pytest -q "$@"
  local status=$?
  set -e
  if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests for: $*" >&2
    return 1
  fi
  return "$status"
}

# Everything but JACK on TEST_WORKERS processes (default 2, the CI machine's cores), each test file
# kept on one of them (its module fixtures built once): 7.4 min instead of 11 here. TEST_WORKERS=0: one process.
# The 15 slowest tests are listed after the run, to keep the suite within its ~10 min.
echo "== pytest (everything but JACK)"
run_pytest -m "not jack" -n "${TEST_WORKERS:-2}" --dist loadfile --durations=15 "$@"
echo "== pytest (JACK: MIDI and audio through a dummy JACK server)"
run_pytest -m jack "$@"
