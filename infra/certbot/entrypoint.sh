#!/bin/sh
# Point d'entrée du conteneur certbot (PLATFORM.md §13.2).
#
#   sans argument   : boucle de renouvellement, `certbot renew --webroot -w /var/www/certbot --quiet` toutes les 12 h
#                     (certbot ne renouvelle qu'à J-30 ; nginx recharge ses certificats toutes les 6 h) ;
#   avec arguments  : `certbot "$@"`, par exemple `docker compose run --rm certbot renew` (runbook INC-006) ou
#                     `docker compose run --rm certbot certonly --webroot -w /var/www/certbot …`.
set -eu

if [ "$#" -gt 0 ]; then
    exec certbot "$@"
fi

# PID 1 : sortir proprement sur SIGTERM (docker compose stop) au lieu d'attendre la fin du sommeil.
trap 'exit 0' TERM INT

interval=43200 # 12 h, en secondes
while :; do
    # Un échec ne doit pas arrêter la boucle (le redémarrage du conteneur relancerait aussitôt certbot et
    # consommerait les quotas de Let's Encrypt) : on le signale et on réessaie au prochain tour.
    if ! certbot renew --webroot -w /var/www/certbot --quiet; then
        echo "certbot: ÉCHEC du renouvellement, nouvel essai dans 12 h" >&2
    fi
    sleep "$interval" &
    wait "$!"
done
