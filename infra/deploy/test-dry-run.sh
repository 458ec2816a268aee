#!/usr/bin/env bash
# Exercises infra/deploy/deploy.sh and rollback.sh without a container engine (PLATFORM.md §13.4, §13.5): a throw-away
# git repository holding docker-compose.yml, a filled-in .env and copies of the scripts; DRY_RUN=1; `docker` and `curl`
# replaced on PATH by stubs that log their arguments and answer "healthy" / 200 (or not, on demand). The stub docker
# refuses every command that changes something, so it also proves DRY_RUN runs none of them.
#   infra/deploy/test-dry-run.sh        exit 0 when every assertion holds
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC=$PWD

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
REPO=$T/repo
BIN=$T/bin
OUT=$T/out
mkdir -p "$REPO/infra/deploy" "$REPO/infra/backup" "$BIN" "$T/backups" "$T/docker-root"

# --- the stubs ------------------------------------------------------------------------------------------------------
# STUB_HEALTH: ok | fail (always unhealthy) | fail-deploy (unhealthy, except inside the rollback started by deploy.sh,
# which carries MANCHENGO_DEPLOY_AUTO=1); STUB_SCHEMA=refuse | missing-migration: unhealthy, and the logs show the
# binary's « schéma trop récent » refusal or the migrator's « Migration file … is missing »;
# STUB_MISSING_IMAGES: images `docker image inspect` does not know; STUB_ALLOW_ALL=1: accept (and log) every command,
# for the one run without DRY_RUN.
cat > "$BIN/stub-health" << 'EOF'
#!/usr/bin/env bash
if [[ -n ${STUB_SCHEMA:-} ]]; then exit 1; fi
case ${STUB_HEALTH:-ok} in
  ok) exit 0 ;;
  fail-deploy) [[ ${MANCHENGO_DEPLOY_AUTO:-} == 1 ]] ;;
  *) exit 1 ;;
esac
EOF
cat > "$BIN/docker" << 'EOF'
#!/usr/bin/env bash
printf 'docker %s\n' "$*" >> "$STUB_LOG"
case $1 in
  info) echo "$STUB_DOCKER_ROOT" ;;
  compose) [[ $* == "compose config -q" || ${STUB_ALLOW_ALL:-} == 1 ]] || { echo "stub docker : interdit en simulation : $*" >&2; exit 97; } ;;
  image)
    [[ $2 == inspect ]] || exit 97
    name=${*: -1}
    for missing in ${STUB_MISSING_IMAGES:-}; do
      [[ $missing == "$name" ]] && { echo "Error: No such image: $name" >&2; exit 1; }
    done
    case $* in
      *.Id*) echo "sha256:5eed0000stub" ;;
      *Labels*) echo "" ;;
      *) echo "[{}]" ;;
    esac
    ;;
  inspect)
    case $* in
      *Health.Status*) if stub-health; then echo healthy; else echo unhealthy; fi ;;
      *State.Status*) echo running ;;
      *) exit 97 ;;
    esac
    ;;
  logs)
    echo '{"level":"INFO","message":"starting"}'
    case ${STUB_SCHEMA:-} in
      refuse) echo "schéma trop récent pour cette version (min 0.2.0) : cette version est 0.1.0 ; voir docs/RUNBOOK.md#rollback" ;;
      missing-migration) echo '{"level":"ERROR","fields":{"message":"database bootstrap failed; retrying","error":"Migration file of version '"'"'m20261201_000000_x'"'"' is missing, this migration has been applied but its file is missing"}}' ;;
    esac
    ;;
  *) [[ ${STUB_ALLOW_ALL:-} == 1 ]] || { echo "stub docker : interdit en simulation : $*" >&2; exit 97; } ;;
esac
EOF
cat > "$BIN/curl" << 'EOF'
#!/usr/bin/env bash
printf 'curl %s\n' "$*" >> "$STUB_LOG"
if stub-health; then printf 200; else printf 503; exit 22; fi
EOF
chmod +x "$BIN"/*

# --- the throw-away repository --------------------------------------------------------------------------------------
cp "$SRC/docker-compose.yml" "$SRC/.env.production.example" "$REPO/"
cp "$SRC"/infra/deploy/{lib.sh,deploy.sh,rollback.sh} "$REPO/infra/deploy/"
cp "$SRC/infra/backup/backup-postgres.sh" "$REPO/infra/backup/"
# .deploy/ is deliberately not ignored here: deploy.sh must not count it as a change of the work tree.
printf '.env\n' > "$REPO/.gitignore"
sed -e 's/CHANGEZ-MOI/0123456789abcdef0123456789abcdef/g' -e 's|^PUBLIC_URL=$|PUBLIC_URL=https://erp.test.invalid|' \
  "$SRC/.env.production.example" > "$REPO/.env"
g() { git -C "$REPO" -c user.name=test -c user.email=test@test.invalid "$@"; }
g -c init.defaultBranch=main init -q
commit() {
  echo "$1" > "$REPO/VERSION"
  g add -A
  g commit -q -m "$1"
  g rev-parse --short=12 HEAD
}
A=$(commit A)

export STUB_LOG=$T/stub.log STUB_DOCKER_ROOT=$T/docker-root PATH="$BIN:$PATH"
export DRY_RUN=1 DEPLOY_HEALTH_TIMEOUT=2 DEPLOY_HEALTH_INTERVAL=0.2 DEPLOY_BACKUPS_DIR=$T/backups DEPLOY_MIN_FREE_MIB=1
unset REGISTRY STUB_HEALTH STUB_SCHEMA STUB_MISSING_IMAGES MANCHENGO_DEPLOY_AUTO MANCHENGO_DEPLOY_LOCK_HELD

# --- helpers --------------------------------------------------------------------------------------------------------
passed=0
ok() {
  passed=$((passed + 1))
  echo "ok $passed - $1"
}
not_ok() {
  echo "ÉCHEC - $1" >&2
  echo "--- sortie du dernier script ---" >&2
  cat "$OUT" >&2
  exit 1
}
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else not_ok "$what"; fi
}
# deploy / rollback [args…]: runs the script in the repository, output in $OUT, exit code in $RC.
deploy() {
  : > "$STUB_LOG"
  RC=0
  (cd "$REPO" && ./infra/deploy/deploy.sh "$@") > "$OUT" 2>&1 || RC=$?
}
rollback() {
  : > "$STUB_LOG"
  RC=0
  (cd "$REPO" && ./infra/deploy/rollback.sh "$@") > "$OUT" 2>&1 || RC=$?
}
state() { cat "$REPO/.deploy/$1" 2> /dev/null || true; }
history_lines() { if [[ -f $REPO/.deploy/history ]]; then wc -l < "$REPO/.deploy/history"; else echo 0; fi; }
last_history() { tail -n 1 "$REPO/.deploy/history"; }
# line_of <command> [<after>]: number of the first output line after line <after> equal to "[simulation] <command>",
# nothing if absent.
line_of() { grep -n -x -F -- "[simulation] $1" "$OUT" | awk -F: -v after="${2:-0}" '$1 > after { print $1; exit }'; }
printed() { [[ -n $(line_of "$1") ]]; }
# in_order <command>…: each one printed after the previous one.
in_order() {
  local previous=0 cmd
  for cmd in "$@"; do
    previous=$(line_of "$cmd" "$previous")
    [[ -n $previous ]] || return 1
  done
}
# in_log_order <command>…: each one received by the stubs after the previous one.
in_log_order() {
  local previous=0 cmd
  for cmd in "$@"; do
    previous=$(grep -n -x -F -- "$cmd" "$STUB_LOG" | awk -F: -v after="$previous" '$1 > after { print $1; exit }')
    [[ -n $previous ]] || return 1
  done
}
eq() { [[ $1 == "$2" ]]; }
TAB=$'\t'
MIGRATE="docker run --rm --network manchengo -v $REPO/.env:/etc/manchengo/manchengo.env:ro -e MANCHENGO_ENV_FILE=/etc/manchengo/manchengo.env"
UP="docker compose up -d --no-deps --force-recreate"

# --- 1. first deployment on a new host ------------------------------------------------------------------------------
STUB_MISSING_IMAGES=manchengo:current deploy
check "premier déploiement : code 0" eq "$RC" 0
check "premier déploiement : .deploy/current = $A" eq "$(state current)" "$A"
check "premier déploiement : pas de .deploy/previous" eq "$(state previous)" ""
check "premier déploiement : une ligne d'historique" eq "$(history_lines)" 1
check "historique : heure UTC, opérateur, tag, action, résultat" \
  grep -qE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z${TAB}[^${TAB}]+${TAB}$A${TAB}deploy \(simulation\)${TAB}ok$" \
  "$REPO/.deploy/history"
check "image construite avec le commit" printed "docker build --build-arg MANCHENGO_GIT_COMMIT=$A -t manchengo:$A ."
check "ordre : sauvegarde → migrations → backend → web → backup" in_order \
  "infra/backup/backup-postgres.sh --label pre-deploy-$A" \
  "$MIGRATE manchengo:$A manchengo migrate" \
  "docker tag manchengo:$A manchengo:current" \
  "$UP backend" "$UP web" "$UP backup"
check "bilan de santé : docker inspect de manchengo-backend" \
  grep -qxF "docker inspect -f {{.State.Health.Status}} manchengo-backend" "$STUB_LOG"
check "bilan de santé : curl de /api/health/ready" grep -qF "http://localhost:3000/api/health/ready" "$STUB_LOG"
check "bilan de santé : docker inspect de manchengo-web" \
  grep -qxF "docker inspect -f {{.State.Health.Status}} manchengo-web" "$STUB_LOG"

rollback
check "rollback sans version précédente : refusé" eq "$RC" 1
check "rollback sans version précédente : message" grep -q "aucune version précédente" "$OUT"
check "rollback refusé : une ligne d'historique de plus" eq "$(history_lines)" 2

# --- 2. second release ----------------------------------------------------------------------------------------------
B=$(commit B)
REGISTRY=registry.test.invalid/acme/ deploy
check "deuxième déploiement : code 0" eq "$RC" 0
check "deuxième déploiement : current = $B, previous = $A" eq "$(state current)/$(state previous)" "$B/$A"
check "REGISTRY : docker pull puis docker tag" in_order \
  "docker pull registry.test.invalid/acme/manchengo:$B" \
  "docker tag registry.test.invalid/acme/manchengo:$B manchengo:$B" \
  "infra/backup/backup-postgres.sh --label pre-deploy-$B"
check "REGISTRY : pas de docker build" eq "$(grep -c '^\[simulation\] docker build' "$OUT")" 0

# --- 3. manual rollback and back ------------------------------------------------------------------------------------
rollback
check "rollback : code 0" eq "$RC" 0
check "rollback : current et previous échangés" eq "$(state current)/$(state previous)" "$A/$B"
check "rollback : retag puis backend → web → backup" in_order \
  "docker tag manchengo:$A manchengo:current" "$UP backend" "$UP web" "$UP backup"
check "rollback : aucune migration ni sauvegarde" eq "$(grep -cE 'migrate|backup-postgres' "$OUT")" 0
check "rollback : ligne d'historique" grep -qE "$TAB$A${TAB}rollback \(simulation\)${TAB}ok$" <(last_history)
rollback --to "$B"
check "rollback --to $B : échange de nouveau" eq "$(state current)/$(state previous)" "$B/$A"
rollback --to "$B"
check "rollback vers la version en service : remise en service" eq "$RC" 0
check "rollback vers la version en service : pas d'échange" eq "$(state current)/$(state previous)" "$B/$A"
rollback --to 'x;rm'
check "rollback --to invalide : refusé" eq "$RC" 1

# --- 4. failed health gate: automatic rollback ----------------------------------------------------------------------
C=$(commit C)
before=$(history_lines)
STUB_HEALTH=fail-deploy deploy
check "santé en échec : deploy sort avec 1" eq "$RC" 1
check "santé en échec : rollback.sh appelé" printed "docker tag manchengo:$B manchengo:current"
check "santé en échec : web et backup pas redémarrés avant le retour" \
  in_order "$UP backend" "docker tag manchengo:$B manchengo:current" "$UP web"
check "santé en échec : .deploy/current inchangé" eq "$(state current)" "$B"
check "santé en échec : .deploy/previous inchangé" eq "$(state previous)" "$A"
check "santé en échec : lignes rollback-auto puis deploy" eq "$(tail -n 2 "$REPO/.deploy/history" | cut -f4 | tr '\n' ,)" \
  "rollback-auto (simulation),deploy (simulation),"
check "santé en échec : deux lignes d'historique" eq "$(history_lines)" $((before + 2))
check "santé en échec : résultat du deploy" grep -q "retour à $B réussi" <(last_history)

STUB_HEALTH=fail deploy
check "santé et retour en échec : deploy sort avec 1" eq "$RC" 1
check "santé et retour en échec : current/previous inchangés" eq "$(state current)/$(state previous)" "$B/$A"
check "santé et retour en échec : message d'intervention" grep -q "retour automatique à $B échoué" "$OUT"

# --- 5. the previous binary refuses the schema ----------------------------------------------------------------------
STUB_SCHEMA=refuse rollback
check "schéma trop récent : rollback sort avec 3" eq "$RC" 3
check "schéma trop récent : renvoi au runbook (décision DR)" grep -q "docs/RUNBOOK.md#rollback" "$OUT"
check "schéma trop récent : version remplacée remise" in_order \
  "docker tag manchengo:$A manchengo:current" "$UP backend" "docker tag sha256:5eed0000stub manchengo:current"
check "schéma trop récent : web jamais touché" eq "$(grep -c "^\[simulation\] $UP web" "$OUT")" 0
check "schéma trop récent : current/previous inchangés" eq "$(state current)/$(state previous)" "$B/$A"
STUB_SCHEMA=missing-migration rollback
check "migration inconnue du binaire : rollback sort avec 3" eq "$RC" 3
check "migration inconnue du binaire : current/previous inchangés" eq "$(state current)/$(state previous)" "$B/$A"

# --- 6. preflight ---------------------------------------------------------------------------------------------------
echo dirty >> "$REPO/VERSION"
deploy
check "arbre modifié : refusé" eq "$RC" 1
check "arbre modifié : message" grep -q "arbre de travail n'est pas propre" "$OUT"
g checkout -q -- VERSION

cp "$REPO/.env" "$T/env.ok"
sed -i 's/^REDIS_PASSWORD=.*/REDIS_PASSWORD=CHANGEZ-MOI/; s/^PUBLIC_URL=.*/PUBLIC_URL=/' "$REPO/.env"
deploy
check ".env incomplet : refusé" eq "$RC" 1
check ".env incomplet : PUBLIC_URL signalé" grep -q "PUBLIC_URL est vide" "$OUT"
check ".env incomplet : REDIS_PASSWORD signalé" grep -q "REDIS_PASSWORD contient encore CHANGEZ-MOI" "$OUT"
check ".env incomplet : aucun secret affiché" eq "$(grep -c 0123456789abcdef "$OUT")" 0
cp "$T/env.ok" "$REPO/.env"
sed -i 's/^POSTGRES_PASSWORD=.*/POSTGRES_PASSWORD=autre-mot-de-passe/' "$REPO/.env"
deploy
check "mots de passe PostgreSQL différents : refusé" grep -q "DATABASE_URL diffère de POSTGRES_PASSWORD" "$OUT"
cp "$T/env.ok" "$REPO/.env"

DEPLOY_MIN_FREE_MIB=999999999 deploy
check "espace disque insuffisant : refusé" eq "$RC" 1
check "espace disque insuffisant : message" grep -q "il en faut au moins 999999999" "$OUT"
check "contrôles en échec : rien n'est exécuté" eq "$(grep -c '^\[simulation\]' "$OUT")" 0
check "contrôles en échec : état inchangé" eq "$(state current)/$(state previous)" "$B/$A"

# --- 7. --ref, and a host installed by hand -------------------------------------------------------------------------
deploy --ref "$A"
check "--ref : git checkout --detach affiché" printed "git checkout --quiet --detach $A"
check "--ref : tag de la référence" printed "$MIGRATE manchengo:$A manchengo migrate"
check "--ref : current = $A, previous = $B" eq "$(state current)/$(state previous)" "$A/$B"
deploy --ref does-not-exist
check "--ref inconnue : refusé" grep -q "référence git inconnue" "$OUT"

rm -rf "$REPO/.deploy"
deploy
check "hôte installé à la main : l'image en service est gardée" printed "docker tag manchengo:current manchengo:initial"
check "hôte installé à la main : previous = initial" eq "$(state current)/$(state previous)" "$C/initial"

# --- 8. the same deployment really run (DRY_RUN unset), against the stubs ----------------------------------------------
D=$(commit D)
DRY_RUN=0 STUB_ALLOW_ALL=1 deploy
check "exécution réelle : code 0" eq "$RC" 0
check "exécution réelle : rien n'est simulé" eq "$(grep -c '^\[simulation\]' "$OUT")" 0
check "exécution réelle : sauvegarde → migrations → backend → web → backup" in_log_order \
  "docker build --build-arg MANCHENGO_GIT_COMMIT=$D -t manchengo:$D ." \
  "docker compose run --rm backup manchengo backup --label pre-deploy-$D" \
  "$MIGRATE manchengo:$D manchengo migrate" \
  "docker tag manchengo:$D manchengo:current" \
  "$UP backend" "$UP web" "$UP backup"
check "exécution réelle : current = $D, previous = $C" eq "$(state current)/$(state previous)" "$D/$C"
check "exécution réelle : historique sans « simulation »" grep -qE "$TAB$D${TAB}deploy${TAB}ok$" <(last_history)

echo "tous les tests passent ($passed)."
