#!/usr/bin/env bash
# First Let's Encrypt certificate of a host (runbook INC-006 « Pas de certificat », DR step 6), replacing the
# self-signed placeholder nginx starts with (infra/nginx/docker-entrypoint.d/40-self-signed.sh):
#   infra/certbot/init-letsencrypt.sh --email exploitation@fromagerie.dz [--staging]
# The domain is PUBLIC_URL's host (.env). nginx must run: the HTTP-01 challenge goes through its port 80.
# ACME_SERVER overrides the directory URL (a test CA); --staging uses Let's Encrypt's staging CA (no quota worries).
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() { echo "usage : $0 --email <adresse> [--staging]" >&2; exit 2; }
EMAIL=
SERVER=${ACME_SERVER:-}
while [[ $# -gt 0 ]]; do
  case $1 in
    --email) EMAIL=${2:-}; shift ;;
    --staging) SERVER=https://acme-staging-v02.api.letsencrypt.org/directory ;;
    *) usage ;;
  esac
  shift
done
[[ -n $EMAIL ]] || usage
[[ -r .env ]] || { echo ".env introuvable dans $PWD (répertoire du déploiement)" >&2; exit 1; }
PUBLIC_URL=$(sed -n 's/^PUBLIC_URL=//p' .env | tail -n 1 | tr -d '"')
DOMAIN=${PUBLIC_URL#*://}
DOMAIN=${DOMAIN%%/*}
DOMAIN=${DOMAIN%%:*}
[[ -n $DOMAIN && $DOMAIN == *.* ]] || { echo "PUBLIC_URL ne donne pas de nom de domaine : « $PUBLIC_URL »" >&2; exit 1; }

# A real certificate is renewed, never replaced by this script.
if docker compose run --rm --no-deps --entrypoint test certbot -e /etc/letsencrypt/renewal/manchengo.conf; then
  echo "un certificat « manchengo » existe déjà : docker compose run --rm certbot renew" >&2
  exit 1
fi

echo "Certificat pour $DOMAIN${SERVER:+ (autorité : $SERVER)}"
# The placeholder occupies live/manchengo: certbot would otherwise create « manchengo-0001 ».
docker compose run --rm --no-deps --entrypoint rm certbot -rf /etc/letsencrypt/live/manchengo
server_args=()
[[ -n $SERVER ]] && server_args=(--server "$SERVER")
if ! docker compose run --rm --no-deps certbot certonly --webroot -w /var/www/certbot --cert-name manchengo \
  -d "$DOMAIN" --email "$EMAIL" --agree-tos --no-eff-email --non-interactive "${server_args[@]}"; then
  echo "échec de certbot : nginx garde le certificat chargé ; au prochain démarrage de nginx un certificat provisoire" \
    "est recréé. Vérifier que http://$DOMAIN/.well-known/acme-challenge/ atteint ce serveur (port 80)." >&2
  exit 1
fi
docker compose exec nginx nginx -s reload
echo "Certificat installé et nginx rechargé. Il sera archivé (letsencrypt_latest.tar.gz) à la prochaine sauvegarde."
