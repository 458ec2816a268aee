#!/usr/bin/env bash
# Renders the shipped nginx configuration into a directory for a run without containers (PLATFORM.md §13.5, §15.1):
# container paths -> that directory, Let's Encrypt -> a fresh self-signed certificate, the two app upstreams and the
# listen ports -> loopback. Used by test-config.sh (nginx -t) and by the drills that run nginx as a process.
#
# Usage: infra/nginx/render.sh DIR HTTP_PORT HTTPS_PORT BACKEND_ADDR WEB_ADDR   (addresses as host:port)
#        LETSENCRYPT_LIVE=<dir>: serve the certificate certbot keeps there instead of a fresh self-signed one.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[[ $# -eq 5 ]] || { echo "usage: $0 DIR HTTP_PORT HTTPS_PORT BACKEND_ADDR WEB_ADDR" >&2; exit 2; }
tmp=$1 http_port=$2 https_port=$3 backend=$4 web=$5
mkdir -p "$tmp"
# mime.types comes from the distribution's nginx package, as in the image.
mime_types="${NGINX_MIME_TYPES:-/etc/nginx/mime.types}"
command -v openssl >/dev/null || { echo "render: openssl not found" >&2; exit 1; }
[[ -r "$mime_types" ]] || { echo "render: $mime_types not readable" >&2; exit 1; }

# Layout mirroring the container: <tmp> plays /etc/nginx.
cp "$here/nginx.conf" "$tmp/nginx.conf"
cp -R "$here/conf.d" "$here/snippets" "$tmp/"
cp "$mime_types" "$tmp/mime.types"
mkdir -p "$tmp/letsencrypt" "$tmp/certbot" "$tmp/www/manchengo" "$tmp/temp"
cp -R "$here/html/." "$tmp/www/manchengo/"

# /etc/letsencrypt/live/manchengo/: a directory certbot manages (LETSENCRYPT_LIVE, the certificate drill), or a
# stand-in self-signed certificate (what the entrypoint hook does on a new host).
live="${LETSENCRYPT_LIVE:-$tmp/letsencrypt}"
live="${live%/}/"
if [[ -z ${LETSENCRYPT_LIVE:-} ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
        -keyout "$tmp/letsencrypt/privkey.pem" -out "$tmp/letsencrypt/fullchain.pem" 2>/dev/null
fi

# nginx reaches the app from its own address, as from 172.28.0.10 in compose (TRUSTED_PROXIES): 127.0.0.10 here,
# so a request from the host (127.0.0.1) stays distinct from one relayed by nginx.
# Container paths -> temp dirs; compose IPs and ports -> loopback (§16); no
# `user` (the nginx user exists only in the image); pid and temp files inside
# <tmp> so the check also works without root.
find "$tmp" -name '*.conf' -type f -print0 | xargs -0 sed -i \
    -e "s|/etc/letsencrypt/live/manchengo/|$live|g" \
    -e "s|/etc/nginx/|$tmp/|g" \
    -e "s|/var/www/certbot|$tmp/certbot|g" \
    -e "s|/usr/share/nginx/html|$tmp/www|g" \
    -e "s|172\\.28\\.0\\.20:3000|$backend|g" \
    -e "s|172\\.28\\.0\\.21:3000|$web|g" \
    -e "s|listen 80 |listen 127.0.0.1:$http_port |" \
    -e "s|listen 443 |listen 127.0.0.1:$https_port |"
sed -i \
    -e '/^[[:space:]]*user[[:space:]]/d' \
    -e "s|^\([[:space:]]*pid[[:space:]]\).*|\1$tmp/nginx.pid;|" \
    -e "s|^http {|http {\n    proxy_bind ${NGINX_PROXY_BIND:-127.0.0.10};\n    client_body_temp_path $tmp/temp/body;\n    proxy_temp_path $tmp/temp/proxy;\n    fastcgi_temp_path $tmp/temp/fastcgi;\n    uwsgi_temp_path $tmp/temp/uwsgi;\n    scgi_temp_path $tmp/temp/scgi;|" \
    "$tmp/nginx.conf"

# Fail if a container path or compose address survived the rewrite.
if grep -rnE '/etc/(nginx|letsencrypt)/|/var/www/certbot|/usr/share/nginx|172\.28\.|listen (80|443) ' "$tmp" --include='*.conf'; then
    echo "render: unrewritten container path or address above" >&2
    exit 1
fi

