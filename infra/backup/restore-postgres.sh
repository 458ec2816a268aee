#!/usr/bin/env bash
# Full restore of the PostgreSQL database (PLATFORM.md §12.2, runbook "Restauration complète"):
#   infra/backup/restore-postgres.sh <file|latest> [--yes] [--skip-safety-dump]
# The file is checked first; the current database is renamed aside, never overwritten; on any error before the swap it
# is untouched. Prints the data-loss boundary and the elapsed time (RTO).
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() { echo "usage : $0 <fichier.sql.gz|fichier.dump|latest> [--yes] [--skip-safety-dump]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
FILE=$1; shift
YES=false; SKIP_SAFETY=false
for arg in "$@"; do
  case $arg in
    --yes) YES=true ;;
    --skip-safety-dump) SKIP_SAFETY=true ;;
    *) usage ;;
  esac
done

BACKUPS=${BACKUPS:-/backups/manchengo}
# The backend's published port (docker-compose.yml: 127.0.0.1:3000).
READY_URL=${MANCHENGO_READY_URL:-http://localhost:3000/api/health/ready}
DB=manchengo_erp
TS=$(date -u +%Y%m%d_%H%M%S)
START=$(date +%s)
[[ $FILE == latest ]] && FILE=$BACKUPS/latest.sql.gz
[[ -e $FILE ]] || { echo "fichier introuvable : $FILE" >&2; exit 1; }
FILE=$(readlink -f "$FILE")
STAMP_FILE=$FILE

psql_pg() { docker compose exec -T postgres psql -v ON_ERROR_STOP=1 -X -q -U manchengo "$@"; }

# 1. Check the file before touching anything (decrypting first when needed).
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
case $FILE in
  *.age)
    [[ -r ${AGE_IDENTITY_FILE:-} ]] || { echo "fichier .age : AGE_IDENTITY_FILE (clé privée age, gardée hors du serveur) est requis" >&2; exit 1; }
    age -d -i "$AGE_IDENTITY_FILE" -o "$WORK/backup" "$FILE" 2> /dev/null \
      || { echo "déchiffrement impossible : clé age incorrecte ou fichier corrompu ; rien n'a été modifié" >&2; exit 1; }
    PLAIN=$WORK/backup; FILE=${FILE%.age} ;;
  *.enc)
    [[ -r ${BACKUP_PASSPHRASE_FILE:-} ]] || { echo "fichier .enc : BACKUP_PASSPHRASE_FILE (fichier de phrase secrète) est requis" >&2; exit 1; }
    openssl enc -d -aes-256-cbc -pbkdf2 -iter 600000 -pass "file:$BACKUP_PASSPHRASE_FILE" \
      -in "$FILE" -out "$WORK/backup" 2> /dev/null \
      || { echo "déchiffrement impossible : phrase secrète incorrecte ou fichier corrompu ; rien n'a été modifié" >&2; exit 1; }
    PLAIN=$WORK/backup; FILE=${FILE%.enc} ;;
  *) PLAIN=$FILE ;;
esac
case $FILE in
  *.sql.gz)
    gzip -t "$PLAIN" || { echo "archive corrompue (gzip -t) : $FILE" >&2; exit 1; }
    gzip -dc "$PLAIN" | tail -n 5 | grep -q -- '-- PostgreSQL database dump complete' \
      || { echo "dump incomplet (marqueur de fin absent) : $FILE" >&2; exit 1; } ;;
  *.dump)
    docker compose exec -T postgres pg_restore --list < "$PLAIN" > /dev/null \
      || { echo "dump illisible (pg_restore --list) : $FILE" >&2; exit 1; } ;;
  *) echo "format inconnu : $FILE (.sql.gz ou .dump attendu)" >&2; exit 1 ;;
esac

# 2. Confirmation and the data-loss boundary.
echo "Sauvegarde : $FILE"
echo "Date de la sauvegarde : $(date -r "$STAMP_FILE" '+%d/%m/%Y %H:%M:%S') — tout ce qui a été saisi après est perdu."
if [[ $YES != true ]]; then
  read -r -p "Tapez RESTAURER pour confirmer : " answer
  [[ $answer == RESTAURER ]] || { echo "abandon : rien n'a été modifié"; exit 1; }
fi

# 3. Stop what writes, remembering what ran.
RUNNING=$(docker compose ps --services --status running | grep -E '^(backend|web|backup)$' || true)
# shellcheck disable=SC2086 # word splitting of the service list is wanted
[[ -n $RUNNING ]] && docker compose stop $RUNNING

# 4. Safety dump of the current database.
if [[ $SKIP_SAFETY != true ]]; then
  docker compose exec -T postgres pg_dump -U manchengo --format=custom "$DB" > "$BACKUPS/pre-restore_$TS.dump" \
    || { echo "copie de sécurité impossible (base corrompue ?) : relancez avec --skip-safety-dump" >&2; exit 1; }
fi

# 5–6. Restore into a fresh database in one transaction; swap only when it succeeded.
psql_pg -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname IN ('$DB','${DB}_restore') AND pid <> pg_backend_pid();" > /dev/null
psql_pg -d postgres -c "DROP DATABASE IF EXISTS ${DB}_restore"
psql_pg -d postgres -c "CREATE DATABASE ${DB}_restore OWNER manchengo"
if [[ $FILE == *.sql.gz ]]; then
  restore_ok() { gzip -dc "$PLAIN" | psql_pg --single-transaction -d "${DB}_restore" > /dev/null; }
else
  restore_ok() { docker compose exec -T postgres pg_restore -U manchengo --single-transaction --exit-on-error --no-owner -d "${DB}_restore" < "$PLAIN"; }
fi
if ! restore_ok; then
  psql_pg -d postgres -c "DROP DATABASE IF EXISTS ${DB}_restore"
  echo "restauration échouée : la base actuelle est intacte" >&2
  # shellcheck disable=SC2086
  [[ -n $RUNNING ]] && docker compose start $RUNNING
  exit 1
fi
psql_pg -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$DB' AND pid <> pg_backend_pid();" > /dev/null
psql_pg -d postgres -c "ALTER DATABASE $DB RENAME TO ${DB}_pre_$TS"
psql_pg -d postgres -c "ALTER DATABASE ${DB}_restore RENAME TO $DB"

# Devices that synchronised after the backup instant may hold data the server no longer has (PLATFORM.md §12.3).
SINCE=$(date -u -r "$STAMP_FILE" '+%Y-%m-%d %H:%M:%S+00')
LATE=$(psql_pg -d "${DB}_pre_$TS" -tA -F ' — ' -c "SELECT name, to_char(last_sync_at AT TIME ZONE 'Africa/Algiers', 'DD/MM/YYYY HH24:MI') FROM devices WHERE last_sync_at > '$SINCE' ORDER BY name" 2> /dev/null || true)
if [[ -n $LATE ]]; then
  echo "Appareils synchronisés après la sauvegarde (demander à leurs chauffeurs de synchroniser) :"
  echo "$LATE"
fi

# 7. Migrations with the current image, then a new feed epoch: every device bootstraps again (PLATFORM.md §12.3).
docker compose run --rm --no-deps backend manchengo migrate
docker compose run --rm --no-deps backend manchengo sync reset-feed

# 8. Start again what ran, health gate.
if [[ -n $RUNNING ]]; then
  # shellcheck disable=SC2086
  docker compose start $RUNNING
  if grep -qx backend <<< "$RUNNING"; then
    for _ in $(seq 1 120); do
      curl -fsS -o /dev/null "$READY_URL" 2> /dev/null && break
      sleep 1
    done
    curl -fsS -o /dev/null "$READY_URL" \
      || { docker compose logs --tail 50 backend; echo "le backend ne répond pas après la restauration" >&2; exit 1; }
  fi
fi
echo "Restauration terminée en $(( $(date +%s) - START )) s."
echo "Une fois la restauration acceptée : docker compose exec postgres psql -U manchengo -d postgres -c 'DROP DATABASE ${DB}_pre_$TS'"
