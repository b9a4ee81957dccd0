#!/usr/bin/env bash
# Regenerates the web dashboard's screenshots in docs/screenshots/ (the
# README shows one): runs e2e TestDashboard, which drives headless chromium
# through a real Conductor, with CONDUCTOR_SCREENSHOTS set. As root, after
# make setup.
set -euo pipefail
cd "$(dirname "$0")/.."
CONDUCTOR_SCREENSHOTS="$PWD/docs/screenshots" go test ./e2e -run '^TestDashboard$' -count=1 -v
ls -l docs/screenshots/dashboard-*.png
