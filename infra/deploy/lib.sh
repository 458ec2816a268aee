# shellcheck shell=bash
# Shared by infra/deploy/deploy.sh and infra/deploy/rollback.sh (PLATFORM.md §13.4), sourced after their
# `cd "$(dirname "$0")/../.."`: messages, DRY_RUN, the .deploy/ state files and history, the lock, and the rolling
# restart of backend → web → backup behind the health gate.
#
# Settings (environment):
#   DRY_RUN=1                  commands that change something (docker build/pull/tag/run, docker compose up, git
#                              checkout, the backup script) are printed as « [simulation] … » instead of being run; the
#                              read-only checks (git status, docker compose config, docker info/inspect/logs, curl)
#                              still run; .deploy/ is updated as in a real run (use it in a copy: test-dry-run.sh).
#   REGISTRY                   registry holding the CI-built images ($REGISTRY/manchengo:<tag>); empty: local build.
#   DEPLOY_HEALTH_TIMEOUT=120  seconds allowed to each instance to become healthy.
#   DEPLOY_HEALTH_INTERVAL=2   seconds between two health probes.

DEPLOY_DIR=.deploy
DRY_RUN=${DRY_RUN:-0}
REGISTRY=${REGISTRY:-}
REGISTRY=${REGISTRY%/}
HEALTH_TIMEOUT=${DEPLOY_HEALTH_TIMEOUT:-120}
HEALTH_INTERVAL=${DEPLOY_HEALTH_INTERVAL:-2}
READY_URL=http://localhost:3000/api/health/ready
OPERATOR=${SUDO_USER:-${USER:-$(id -un)}}
# A binary that cannot run on this schema (PLATFORM.md §11.3, docs/RUNBOOK.md#rollback): « schéma trop récent pour
# cette version (min X) » (older than schema_meta.min_reader_version, exit 4), possibly with é escaped by a JSON log
# line; or the migrator's « Migration file of version … is missing » (the database holds migrations this binary does
# not know; it keeps retrying with ready at 503). Alternations, not [ée]: locale-independent.
SCHEMA_REFUSAL_RE='sch(é|e|\\u00e9)ma trop r(é|e|\\u00e9)cent|schema (is )?too (new|recent)|migration file of version .* is missing'
# Service that failed the last rolling restart (set by rolling_restart).
FAILED_SERVICE=
# This run's line of .deploy/history, written by record_history (EXIT trap): the scripts set the action, the tag when
# known, the current step, and RESULT when the exit code alone does not tell the story.
HISTORY_ACTION=
HISTORY_TAG=
STEP=
RESULT=

info() { printf '==> %s\n' "$*"; }
warn() { printf 'ATTENTION : %s\n' "$*" >&2; }
fail() { printf 'ERREUR : %s\n' "$*" >&2; }
die() {
  fail "$@"
  exit 1
}

# run <command…>: runs it, or only prints it when DRY_RUN=1.
run() {
  if [[ $DRY_RUN == 1 ]]; then
    local quoted
    quoted=$(printf '%q ' "$@")
    printf '[simulation] %s\n' "${quoted% }"
  else
    "$@"
  fi
}

dry_run_banner() {
  if [[ $DRY_RUN == 1 ]]; then
    warn "SIMULATION (DRY_RUN=1) : les commandes docker, git et de sauvegarde qui modifient quelque chose sont" \
      "affichées sans être exécutées ; les contrôles sont réels et .deploy/ est mis à jour."
  fi
}

# Docker image tags as written by deploy.sh (git sha) or given to --to.
valid_tag() { [[ $1 =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; }

# state_get <current|previous>: the tag recorded in .deploy/<name>, or nothing.
state_get() {
  local file=$DEPLOY_DIR/$1 value=
  if [[ -s $file ]]; then
    IFS= read -r value < "$file" || true
  fi
  printf '%s' "$value"
}

# state_set <current|previous> <tag>: atomic replacement; an empty tag removes the file.
state_set() {
  local file=$DEPLOY_DIR/$1
  if [[ -z $2 ]]; then
    rm -f "$file"
  else
    printf '%s\n' "$2" > "$file.tmp"
    mv -f "$file.tmp" "$file"
  fi
}

# history_append <action> <tag> <result>: one tab-separated line (UTC time, operator, tag, action, result).
history_append() {
  local action=$1 tag=${2:--} result=$3
  [[ $DRY_RUN == 1 ]] && action="$action (simulation)"
  action=${action//[$'\t\n\r']/ } tag=${tag//[$'\t\n\r']/ } result=${result//[$'\t\n\r']/ }
  printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$OPERATOR" "$tag" "$action" "$result" \
    >> "$DEPLOY_DIR/history"
}

# EXIT trap of both scripts.
record_history() {
  local rc=$?
  if [[ -z $RESULT ]]; then
    if ((rc == 0)); then RESULT=ok; else RESULT="échec${STEP:+ : $STEP} (code $rc)"; fi
  fi
  history_append "$HISTORY_ACTION" "$HISTORY_TAG" "$RESULT" || true
}

# One deployment or rollback at a time. The rollback started by deploy.sh inherits the lock (and this variable).
take_lock() {
  mkdir -p "$DEPLOY_DIR"
  [[ ${MANCHENGO_DEPLOY_LOCK_HELD:-} == 1 ]] && return 0
  exec 9>> "$DEPLOY_DIR/lock"
  flock -n 9 || die "un autre déploiement ou retour arrière est en cours (verrou $DEPLOY_DIR/lock)."
  export MANCHENGO_DEPLOY_LOCK_HELD=1
}

image_exists() { docker image inspect "$1" > /dev/null 2>&1; }

# schema_refused <container>: its recent logs show the « schéma trop récent » refusal.
schema_refused() {
  local logs
  logs=$(docker logs --tail 200 "$1" 2>&1) || true
  grep -Eqi -- "$SCHEMA_REFUSAL_RE" <<< "$logs"
}

show_logs() {
  printf -- '--- 50 dernières lignes du journal de %s ---\n' "$1" >&2
  docker logs --tail 50 "$1" >&2 2>&1 || true
}

# wait_healthy <container> [<url>]: Docker health = healthy (and, with a url, HTTP 200 there) within HEALTH_TIMEOUT.
# Returns 0, 1 (timeout) or 3 (the binary refuses the schema: waiting longer is pointless).
wait_healthy() {
  local container=$1 url=${2:-} status=absent code='' deadline=$((SECONDS + HEALTH_TIMEOUT))
  info "attente de $container (santé healthy${url:+ et $url = 200}, au plus ${HEALTH_TIMEOUT} s)…"
  while :; do
    status=$(docker inspect -f '{{.State.Health.Status}}' "$container" 2> /dev/null) || status=absent
    if [[ $status == healthy ]]; then
      if [[ -z $url ]]; then
        info "$container : healthy."
        return 0
      fi
      code=$(curl -fsS -o /dev/null -w '%{http_code}' --max-time 5 "$url" 2> /dev/null) || true
      if [[ $code == 200 ]]; then
        info "$container : healthy, $url = 200."
        return 0
      fi
    fi
    if schema_refused "$container"; then
      fail "$container refuse de démarrer : schéma de base de données trop récent pour cette version."
      show_logs "$container"
      return 3
    fi
    ((SECONDS < deadline)) || break
    sleep "$HEALTH_INTERVAL"
  done
  if [[ -n $url && $status == healthy ]]; then
    status="$status, $url : ${code:-pas de réponse}"
  fi
  fail "$container n'est pas prêt après ${HEALTH_TIMEOUT} s (santé : ${status:-absent})."
  show_logs "$container"
  return 1
}

# wait_running <container>: the backup daemon has no healthcheck (PLATFORM.md §13.2); it must at least be running.
wait_running() {
  local container=$1 status=absent deadline=$((SECONDS + HEALTH_TIMEOUT))
  while :; do
    status=$(docker inspect -f '{{.State.Status}}' "$container" 2> /dev/null) || status=absent
    if [[ $status == running ]]; then
      info "$container : en marche."
      return 0
    fi
    ((SECONDS < deadline)) || break
    sleep "$HEALTH_INTERVAL"
  done
  fail "$container n'est pas en marche après ${HEALTH_TIMEOUT} s (état : ${status:-absent})."
  show_logs "$container"
  return 1
}

# rolling_restart: recreates backend, then web, then backup on manchengo:current, one at a time, each behind its
# health gate (backend: healthy + ready 200; web: healthy; backup: running). Stops at the first failure, so the
# instances not yet recreated keep serving. Returns 0, 1 or 3 (see wait_healthy); FAILED_SERVICE names the culprit.
rolling_restart() {
  local svc rc
  FAILED_SERVICE=
  for svc in backend web backup; do
    info "redémarrage de $svc sur manchengo:current…"
    if ! run docker compose up -d --no-deps --force-recreate "$svc"; then
      fail "docker compose up -d $svc a échoué."
      FAILED_SERVICE=$svc
      return 1
    fi
    rc=0
    case $svc in
      backend) wait_healthy manchengo-backend "$READY_URL" || rc=$? ;;
      web) wait_healthy manchengo-web || rc=$? ;;
      backup) wait_running manchengo-backup || rc=$? ;;
    esac
    if ((rc != 0)); then
      FAILED_SERVICE=$svc
      if [[ $svc == backup ]]; then
        fail "bilan de santé échoué sur $FAILED_SERVICE."
      else
        fail "bilan de santé échoué sur $FAILED_SERVICE ; les services suivants n'ont pas été redémarrés."
      fi
      return "$rc"
    fi
  done
}
