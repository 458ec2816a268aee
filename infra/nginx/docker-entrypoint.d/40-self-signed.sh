#!/bin/sh
# Certificat provisoire pour nginx (PLATFORM.md §13.2).
#
# Exécuté par l'entrypoint de l'image nginx (répertoire /docker-entrypoint.d/) avant le démarrage de nginx. nginx lit
# toujours /etc/letsencrypt/live/manchengo/{fullchain,privkey}.pem : si l'un des deux manque (hôte neuf, reprise après
# sinistre avant init-letsencrypt.sh), on crée un certificat autosigné à sa place pour que nginx démarre quand même
# (le port 80 sert alors le défi ACME). Un certificat existant n'est jamais touché.
#
# Le certificat provisoire porte le CN « manchengo-placeholder » et expire dans 7 jours, pour que l'alerte
# TlsCertificateExpiresSoon signale qu'aucun vrai certificat n'est installé. init-letsencrypt.sh doit supprimer ce
# répertoire avant `certbot certonly --cert-name manchengo` (sinon certbot créerait « manchengo-0001 »).
set -eu

live_dir="${MANCHENGO_CERT_DIR:-/etc/letsencrypt/live/manchengo}"
cert="$live_dir/fullchain.pem"
key="$live_dir/privkey.pem"
me="40-self-signed.sh"

if [ -e "$cert" ] && [ -e "$key" ]; then
    exit 0
fi

if ! command -v openssl >/dev/null 2>&1; then
    # L'image nginx:alpine n'embarque pas la commande openssl.
    echo "$me: openssl absent, installation (apk add openssl)" >&2
    if ! apk add --no-cache --quiet openssl >/dev/null 2>&1; then
        echo "$me: ERREUR : impossible d'installer openssl ; aucun certificat dans $live_dir," \
            "nginx ne peut pas démarrer" >&2
        exit 1
    fi
fi

echo "$me: certificat absent dans $live_dir, création d'un certificat autosigné provisoire" >&2
mkdir -p "$live_dir"
# Des liens symboliques orphelins (archive/ absente) seraient suivis par openssl : on repart de fichiers neufs.
rm -f "$cert" "$key"
tmp_key="$live_dir/.privkey.pem.$$"
tmp_cert="$live_dir/.fullchain.pem.$$"
trap 'rm -f "$tmp_key" "$tmp_cert"' EXIT
if ! out=$(
    umask 077
    openssl req -x509 -nodes -newkey rsa:2048 -sha256 -days 7 \
        -subj "/CN=manchengo-placeholder" \
        -keyout "$tmp_key" -out "$tmp_cert" 2>&1
); then
    printf '%s\n' "$out" >&2
    echo "$me: ERREUR : openssl n'a pas pu créer le certificat provisoire ; nginx ne peut pas démarrer" >&2
    exit 1
fi
chmod 0600 "$tmp_key"
chmod 0644 "$tmp_cert"
mv -f "$tmp_key" "$key"
mv -f "$tmp_cert" "$cert"
echo "$me: certificat provisoire créé : $cert" >&2
