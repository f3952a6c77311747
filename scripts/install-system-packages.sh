#!/usr/bin/env bash
# Installs the system packages the tests use when they are missing and we may (root). Otherwise says what is missing;
# the tests that need a missing tool skip with the same hint.
set -u
missing=()
command -v kubectl >/dev/null 2>&1 || missing+=(kubectl)
# prometheus and promtool (one package): tmc up's Prometheus, the rule tests, the dashboard queries.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# chromium: the API reference test renders the generated HTML headless (tests/e2e/test_api_reference.py).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# tmux: the e2e test of `tmc dashboard` runs it in a tmux pane and reads the screen with capture-pane.
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${missing[*]}"
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
    || echo "could not install ${missing[*]}; tests that need them will skip"
else
  echo "missing system packages: ${missing[*]} (install them with apt-get as root); tests that need them will skip"
fi
exit 0
