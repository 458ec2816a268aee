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

# Layout mirroring the container: <tmp> plays /etc/nginx.
cp "$here/nginx.conf" "$tmp/nginx.conf"
cp -R "$here/conf.d" "$here/snippets" "$tmp/"
cp "$mime_types" "$tmp/mime.types"
mkdir -p "$tmp/letsencrypt" "$tmp/certbot" "$tmp/www/manchengo" "$tmp/temp"
cp -R "$here/html/." "$tmp/www/manchengo/"

# Stand-in for /etc/letsencrypt/live/manchengo/ (what the entrypoint hook does).
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -keyout "$tmp/letsencrypt/privkey.pem" -out "$tmp/letsencrypt/fullchain.pem" 2>/dev/null

# Container paths -> temp dirs; compose IPs and ports -> loopback (§16); no
# `user` (the nginx user exists only in the image); pid and temp files inside
# <tmp> so the check also works without root.
find "$tmp" -name '*.conf' -type f -print0 | xargs -0 sed -i \
    -e "s|/etc/letsencrypt/live/manchengo/|$tmp/letsencrypt/|g" \
    -e "s|/etc/nginx/|$tmp/|g" \
    -e "s|/var/www/certbot|$tmp/certbot|g" \
    -e "s|/usr/share/nginx/html|$tmp/www|g" \
    -e 's|172\.28\.0\.2[01]:|127.0.0.1:|g' \
    -e "s|listen 80 |listen 127.0.0.1:$http_port |" \
    -e "s|listen 443 |listen 127.0.0.1:$https_port |"
sed -i \
    -e '/^[[:space:]]*user[[:space:]]/d' \
    -e "s|^\([[:space:]]*pid[[:space:]]\).*|\1$tmp/nginx.pid;|" \
    -e "s|^http {|http {\n    client_body_temp_path $tmp/temp/body;\n    proxy_temp_path $tmp/temp/proxy;\n    fastcgi_temp_path $tmp/temp/fastcgi;\n    uwsgi_temp_path $tmp/temp/uwsgi;\n    scgi_temp_path $tmp/temp/scgi;|" \
    "$tmp/nginx.conf"

# Fail if a container path or compose address survived the rewrite.
if grep -rnE '/etc/(nginx|letsencrypt)/|/var/www/certbot|/usr/share/nginx|172\.28\.|listen (80|443) ' "$tmp" --include='*.conf'; then
    echo "test-config: unrewritten container path or address above" >&2
    exit 1
fi

# -e: keep nginx away from the compiled-in /var/log/nginx/error.log.
"$nginx_bin" -t -e stderr -p "$tmp/" -c "$tmp/nginx.conf"
