#!/usr/bin/env bash
# Debian's Chromium (never a downloaded browser) and fonts that cover Arabic and Ge'ez script;
# Debian's nginx and envsubst for tests/browser/test_nginx_deployment.py, which starts its
# own nginx on a free port (the package's own service is not used by the tests); Node.js
# for the browser modules' unit tests (`node --test tests/js/`, Node 18 or newer).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
dpkg -s fonts-noto-core >/dev/null 2>&1 || need+=(fonts-noto-core)
[ -x /usr/sbin/nginx ] || need+=(nginx)
command -v envsubst >/dev/null 2>&1 || need+=(gettext-base)
command -v node >/dev/null 2>&1 || need+=(nodejs)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
echo "Installing from Debian: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
