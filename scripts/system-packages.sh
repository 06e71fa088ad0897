#!/usr/bin/env bash
# Installs, as root, the system programs the full test suite uses (Debian's packages).
# .ci/run calls this; the README shows the same list as one apt-get line, and
# tests/test_docs.py checks that the two agree. Without them, each test that needs a program
# skips with a reason naming its package (under CI=true that is a failure instead).
set -euo pipefail
# chromium: the browser tests; fonts-noto-core: Hebrew and Arabic boards (fit, screenshots);
# prometheus (promtool): metrics, rules and scrape tests; nginx, openssl, systemd
# (systemd-analyze): the documented reverse proxy and unit; sqlite3: the documented journal
# backup; redis-server: the Redis journal tests and bench; request-tracker5 and friends: a
# real RT 5 on SQLite for tests/test_request_tracker_rt5.py.
PACKAGES=(
    chromium fonts-noto-core prometheus nginx openssl systemd sqlite3 redis-server
    request-tracker5 rt5-db-sqlite rt5-standalone dbconfig-sqlite3
)
if [ "${1:-}" = "--list" ]; then
    echo "${PACKAGES[@]}"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The tests start their own servers on ephemeral loopback ports: keep the packages' services
# from starting (and holding :9090 or :80) during the install and at boot.
no_start=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    no_start=1
fi
# Request Tracker's installer answers; the install itself creates its SQLite database.
debconf-set-selections <<'PRESEED'
request-tracker5 request-tracker5/rtname string wallboard.test
request-tracker5 request-tracker5/organization string wallboard.test
request-tracker5 request-tracker5/correspondaddress string rt@localhost
request-tracker5 request-tracker5/commentaddress string rt-comment@localhost
request-tracker5 request-tracker5/webbaseurl string http://127.0.0.1:8080
request-tracker5 request-tracker5/webpath string /rt
request-tracker5 request-tracker5/initial-root-password password password123
request-tracker5 request-tracker5/dbconfig-install boolean true
request-tracker5 request-tracker5/database-type select sqlite3
request-tracker5 request-tracker5/install-cronjobs boolean false
PRESEED
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
if [ -n "$no_start" ]; then rm -f /usr/sbin/policy-rc.d; fi
if command -v systemctl >/dev/null; then
    systemctl disable --now prometheus nginx redis-server >/dev/null 2>&1 || true
fi
