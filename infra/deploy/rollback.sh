#!/usr/bin/env bash
# Application rollback (PLATFORM.md §13.4, runbook « Rollback applicatif »):
#   infra/deploy/rollback.sh [--to <tag>]
# Puts manchengo:<tag> (default: .deploy/previous) back in service with the same rolling restart and health gate as
# deploy.sh, then swaps .deploy/current and .deploy/previous (a target equal to .deploy/current, as after an interrupted
# deployment, is put back in service without a swap). It NEVER touches the database: by the expand/contract
# rule (§11.3) the previous binary runs on the newer schema. If schema_meta forbids it, that binary refuses to start
# (« schéma trop récent ») and this script stops (exit 3) after putting the release it replaced back: a restore is then
# a disaster-recovery decision (docs/RUNBOOK.md#rollback). Exit 0 ok, 1 failure, 2 usage, 3 schema refusal.
# Every run appends one line to .deploy/history. Settings (DRY_RUN, REGISTRY, timeouts): infra/deploy/lib.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=infra/deploy/lib.sh
. infra/deploy/lib.sh

usage() {
  echo "usage : $0 [--to <tag>]" >&2
  exit 2
}
TO=
while (($#)); do
  case $1 in
    --to)
      [[ $# -ge 2 && -n $2 && $2 != -* ]] || usage
      TO=$2
      shift 2
      ;;
    *) usage ;;
  esac
done

take_lock
CURRENT=$(state_get current)
TARGET=${TO:-$(state_get previous)}
HISTORY_ACTION=rollback
# Set by deploy.sh when its health gate failed (the failed release was never recorded as current).
[[ ${MANCHENGO_DEPLOY_AUTO:-} == 1 ]] && HISTORY_ACTION=rollback-auto
HISTORY_TAG=$TARGET
STEP="contrôles préalables"
trap record_history EXIT

dry_run_banner
[[ -n $TARGET ]] || die "aucune version précédente (.deploy/previous absent) : précisez --to <tag> (voir .deploy/history)."
valid_tag "$TARGET" || die "étiquette invalide : $TARGET"
if [[ $TARGET == "$CURRENT" ]]; then
  # After an interrupted or failed deployment (previous = current), or to repair: put it back without a swap.
  info "remise en service de $TARGET, déjà enregistrée dans .deploy/current (qui reste inchangé ; la base de données" \
    "n'est pas modifiée)."
else
  info "retour arrière : ${CURRENT:-version inconnue} → $TARGET (la base de données n'est pas modifiée)."
fi

# The image must be here, or in the registry.
if ! image_exists "manchengo:$TARGET"; then
  [[ -n $REGISTRY ]] || die "image manchengo:$TARGET absente localement et REGISTRY non défini : docker images manchengo."
  info "image manchengo:$TARGET absente : téléchargement depuis $REGISTRY…"
  run docker pull "$REGISTRY/manchengo:$TARGET" || die "docker pull $REGISTRY/manchengo:$TARGET a échoué."
  run docker tag "$REGISTRY/manchengo:$TARGET" "manchengo:$TARGET"
fi

# What manchengo:current is now, to put it back if the target refuses the schema.
STEP=bascule
BEFORE_ID=$(docker image inspect -f '{{.Id}}' manchengo:current 2> /dev/null) || BEFORE_ID=
run docker tag "manchengo:$TARGET" manchengo:current

STEP="redémarrage"
rc=0
rolling_restart || rc=$?
if ((rc == 0)); then
  if [[ $TARGET != "$CURRENT" ]]; then
    state_set previous "$CURRENT"
    state_set current "$TARGET"
  fi
  info "retour arrière réussi : $TARGET en service (.deploy/current = $TARGET, .deploy/previous = $(state_get previous))."
  exit 0
fi

if ((rc == 3)); then
  RESULT="refusé : schéma trop récent pour $TARGET"
  fail "manchengo:$TARGET refuse ce schéma de base de données (schema_meta.min_reader_version) : un retour arrière" \
    "applicatif vers cette version est impossible sans toucher aux données."
  if [[ -n $BEFORE_ID ]]; then
    info "remise en service de la version remplacée (${CURRENT:-$BEFORE_ID}) sur $FAILED_SERVICE…"
    if run docker tag "$BEFORE_ID" manchengo:current \
      && run docker compose up -d --no-deps --force-recreate "$FAILED_SERVICE"; then
      case $FAILED_SERVICE in
        backend) wait_healthy manchengo-backend "$READY_URL" || warn "manchengo-backend n'est toujours pas prêt." ;;
        web) wait_healthy manchengo-web || warn "manchengo-web n'est toujours pas prêt." ;;
        *) wait_running "manchengo-$FAILED_SERVICE" || warn "manchengo-$FAILED_SERVICE n'est toujours pas en marche." ;;
      esac
    fi
  fi
  fail "Retour arrière arrêté. .deploy/current et .deploy/previous sont inchangés, la base n'a pas été touchée." \
    "Restaurer une sauvegarde antérieure (pre-deploy-…) est alors une décision de reprise après sinistre :" \
    "voir docs/RUNBOOK.md#rollback."
  exit 3
fi

STEP="bilan de santé ($FAILED_SERVICE)"
fail "retour arrière vers $TARGET échoué sur $FAILED_SERVICE (manchengo:current = $TARGET ; .deploy/current inchangé)."
fail "Diagnostic : docker compose ps ; docker compose logs --tail=100 $FAILED_SERVICE ; voir docs/RUNBOOK.md#rollback."
exit 1
