#!/usr/bin/env bash
# Checks the nginx configuration of the deployment kit with `nginx -t`, without a
# container engine (PLATFORM.md §13.5): the real files are copied into a
# temporary prefix and only the container paths and compose addresses are
# rewritten (container paths -> temp dir, Let's Encrypt -> a fresh self-signed
# certificate, upstreams and listen ports -> loopback), so what is tested is the
# shipped config.
#
# Usage: infra/nginx/test-config.sh        (needs nginx and openssl; NGINX=... to
#                                           use another binary)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
nginx_bin="${NGINX:-nginx}"
# mime.types comes from the distribution's nginx package, as in the image.
mime_types="${NGINX_MIME_TYPES:-/etc/nginx/mime.types}"

command -v "$nginx_bin" >/dev/null || { echo "test-config: nginx not found" >&2; exit 1; }
command -v openssl >/dev/null || { echo "test-config: openssl not found" >&2; exit 1; }
[[ -r "$mime_types" ]] || { echo "test-config: $mime_types not readable" >&2; exit 1; }

# `nginx -t` binds the listen sockets: use free loopback ports instead of 80/443
# so the check needs no root and does not clash with a running server.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in 1 2 3 4 5 6 7 8 9 10; do
    http_port=$((20000 + RANDOM % 40000))
    https_port=$((http_port + 1))
    if port_free "$http_port" && port_free "$https_port"; then break; fi
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$here/render.sh" "$tmp" "$http_port" "$https_port" 127.0.0.1:3000 127.0.0.1:3000

# -e: keep nginx away from the compiled-in /var/log/nginx/error.log.
"$nginx_bin" -t -e stderr -p "$tmp/" -c "$tmp/nginx.conf"
