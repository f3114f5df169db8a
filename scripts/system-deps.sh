#!/usr/bin/env bash
# Debian packages the test suite drives as real programs (never mocked):
#   chromium      headless browser for the member-app and console tests (Playwright drives it)
#   zbar-tools    zbarimg decodes the QR codes and barcodes Kopilka draws, to prove they scan
#   poppler-utils pdftoppm renders the printable coupon sheets so zbarimg can read them
#   fonts-dejavu-core  a Cyrillic TrueType font for the PDF sheets
# Installs what is missing when run as root; otherwise says what to install and fails.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/zbarimg ] || need+=(zbar-tools)
[ -x /usr/bin/pdftoppm ] || need+=(poppler-utils)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "Missing system packages: ${need[*]} — install them: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
echo "installing system packages: ${need[*]} …" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends "${need[@]}" >&2
