#!/usr/bin/env bash
# Installs Debian's Chromium for the web page's browser test (test/serve/web/page.test.ts), which drives
# /usr/bin/chromium with playwright-core (no browser download). Idempotent: does nothing when Chromium is there.
# Without root it only says what to run; the test skips itself (with a message) when Chromium is absent.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "install-chromium: /usr/bin/chromium is present ($(/usr/bin/chromium --version 2>/dev/null | head -n 1 || echo 'version unknown'))"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-chromium: /usr/bin/chromium is missing and this is not root; run: sudo apt-get update && sudo apt-get install -y chromium" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
echo "install-chromium: installed $(/usr/bin/chromium --version 2>/dev/null | head -n 1)"
