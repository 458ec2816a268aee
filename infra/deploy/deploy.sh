#!/usr/bin/env bash
# Deployment of a release (PLATFORM.md §13.4), from the deployment directory (the repository clone):
#   infra/deploy/deploy.sh [--ref <git-ref>]
# 1. preflight: clean work tree, `docker compose config -q`, required variables of .env, ≥ 2 GiB free on the Docker
#    data root and on /backups; 2. image manchengo:<sha> pulled from $REGISTRY or built; 3. backup pre-deploy-<sha>;
# 4. migrations (expand-only) with the new image while the old binary keeps serving; 5. .deploy/previous ← current,
# manchengo:current ← the new image; 6. rolling restart backend → web → backup behind the health gate;
# 7. .deploy/current ← <sha>, or automatic infra/deploy/rollback.sh and exit 1.
# Every run appends one line to .deploy/history. Settings (DRY_RUN, REGISTRY, timeouts): infra/deploy/lib.sh.
#   DEPLOY_BACKUPS_DIR=/backups   host directory of the backups (bind-mounted by the backup service).
#   DEPLOY_MIN_FREE_MIB=2048      free space required on the Docker data root and on DEPLOY_BACKUPS_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=infra/deploy/lib.sh
. infra/deploy/lib.sh

usage() {
  echo "usage : $0 [--ref <référence git>]" >&2
  exit 2
}
REF=
while (($#)); do
  case $1 in
    --ref)
      [[ $# -ge 2 && -n $2 && $2 != -* ]] || usage
      REF=$2
      shift 2
      ;;
    -h | --help) usage ;;
    *) usage ;;
  esac
done

BACKUPS_DIR=${DEPLOY_BACKUPS_DIR:-/backups}
MIN_FREE_MIB=${DEPLOY_MIN_FREE_MIB:-2048}
# Must be non-empty in .env for a production deployment (.env.production.example): the application refuses to start
# without PUBLIC_URL in production; compose needs both passwords; the backup service writes only under /backups; two
# instances need Redis to share cache and rate limits.
REQUIRED_VARS=(APP_ENV PUBLIC_URL DATABASE_URL POSTGRES_PASSWORD REDIS_URL REDIS_PASSWORD BACKUP_DIR)

TAG=
take_lock
HISTORY_ACTION=deploy
STEP="contrôles préalables"
trap record_history EXIT

# ---------------------------------------------------------------------------------------------------------------------
# 1. Preflight
# ---------------------------------------------------------------------------------------------------------------------

# Reads .env exactly as the application does (crates/app/src/config.rs parse_env_file) and checks the production
# variables, without ever printing a value.
check_env() {
  [[ -f .env ]] || die ".env absent : cp .env.production.example .env && chmod 600 .env, puis remplissez-le."
  local -A env=()
  local line key value n=0 problems=()
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    line=${line%$'\r'}
    line=${line#"${line%%[![:space:]]*}"}
    line=${line%"${line##*[![:space:]]}"}
    [[ -z $line || $line == '#'* ]] && continue
    line=${line#export }
    if [[ $line != *=* ]]; then
      problems+=(".env ligne $n : KEY=valeur attendu")
      continue
    fi
    key=${line%%=*} value=${line#*=}
    key=${key%"${key##*[![:space:]]}"}
    if [[ ! $key =~ ^[A-Za-z0-9_]+$ ]]; then
      problems+=(".env ligne $n : nom de variable invalide")
      continue
    fi
    value=${value#"${value%%[![:space:]]*}"}
    if [[ $value == '"'* ]]; then
      if [[ ${#value} -lt 2 || $value != *'"' ]]; then
        problems+=(".env ligne $n : guillemet non fermé")
        continue
      fi
      value=${value:1:${#value}-2}
    else
      value=${value%%" #"*}
      value=${value%"${value##*[![:space:]]}"}
    fi
    env[$key]=$value
  done < .env

  for key in "${REQUIRED_VARS[@]}"; do
    [[ -n ${env[$key]:-} ]] || problems+=("$key est vide ou absent de .env")
  done
  for key in "${!env[@]}"; do
    [[ ${env[$key]^^} != *CHANGEZ-MOI* ]] || problems+=("$key contient encore CHANGEZ-MOI : remplacez-le (openssl rand -hex 32)")
  done
  if [[ -n ${env[APP_ENV]:-} && ${env[APP_ENV]} != production ]]; then
    problems+=("APP_ENV doit valoir production")
  fi
  local url=${env[DATABASE_URL]:-} password
  if [[ -n $url ]]; then
    if [[ $url =~ ^postgres(ql)?://[^:/@]*:([^@/]*)@ ]]; then
      printf -v password '%b' "${BASH_REMATCH[2]//%/\\x}"
      if [[ -n ${env[POSTGRES_PASSWORD]:-} && $password != "${env[POSTGRES_PASSWORD]}" ]]; then
        problems+=("le mot de passe de DATABASE_URL diffère de POSTGRES_PASSWORD")
      fi
    else
      problems+=("DATABASE_URL doit être postgres://manchengo:<mot de passe>@postgres:5432/manchengo_erp")
    fi
  fi
  if ((${#problems[@]})); then
    printf '  - %s\n' "${problems[@]}" >&2
    die ".env incomplet pour la production (${#problems[@]} problème(s), voir .env.production.example)."
  fi
}

# check_free <directory> <label>: at least MIN_FREE_MIB free.
check_free() {
  local dir=$1 label=$2 avail_kib
  [[ -d $dir ]] || die "$label : répertoire $dir introuvable."
  avail_kib=$(df -Pk -- "$dir" | awk 'NR == 2 { print $4 }')
  [[ $avail_kib =~ ^[0-9]+$ ]] || die "$label : espace libre illisible pour $dir (df)."
  if ((avail_kib < MIN_FREE_MIB * 1024)); then
    die "$label : $((avail_kib / 1024)) Mio libres sur $dir, il en faut au moins $MIN_FREE_MIB."
  fi
}

dry_run_banner
git rev-parse --is-inside-work-tree > /dev/null 2>&1 || die "$PWD n'est pas un dépôt git."
dirty=$(git status --porcelain --untracked-files=all -- . ":(exclude)$DEPLOY_DIR")
if [[ -n $dirty ]]; then
  printf '%s\n' "$dirty" | head -n 20 >&2
  die "l'arbre de travail n'est pas propre : validez ou annulez ces modifications (git status) avant de déployer."
fi
ORIG_HEAD=$(git rev-parse --short=12 HEAD)
if [[ -n $REF ]]; then
  git rev-parse --verify --quiet "$REF^{commit}" > /dev/null \
    || die "référence git inconnue : $REF (git fetch --tags d'abord ?)."
  info "passage sur $REF (détaché ; HEAD actuel : $ORIG_HEAD)…"
  run git checkout --quiet --detach "$REF"
fi
if [[ -n $REF && $DRY_RUN == 1 ]]; then
  TAG=$(git rev-parse --short=12 "$REF^{commit}")
else
  TAG=$(git rev-parse --short=12 HEAD)
fi
HISTORY_TAG=$TAG
info "version à déployer : $TAG"

check_env
docker compose config -q || die "docker compose config a échoué : docker-compose.yml ou .env invalide."
docker_root=$(docker info -f '{{.DockerRootDir}}' 2> /dev/null) || die "moteur Docker injoignable (docker info)."
check_free "$docker_root" "données Docker"
check_free "$BACKUPS_DIR" "sauvegardes"
info "contrôles préalables réussis."

# If anything fails before the restart, the running release is untouched; say how to put the work tree back.
ref_hint() {
  if [[ -n $REF ]]; then
    printf ' Le dépôt est sur %s ; pour revenir : git checkout %s.' "$TAG" "$ORIG_HEAD"
  fi
}

# ---------------------------------------------------------------------------------------------------------------------
# 2. Image
# ---------------------------------------------------------------------------------------------------------------------
STEP="image"
if [[ -n $REGISTRY ]]; then
  info "téléchargement de $REGISTRY/manchengo:$TAG (construite et testée par la CI)…"
  run docker pull "$REGISTRY/manchengo:$TAG" || die "docker pull $REGISTRY/manchengo:$TAG a échoué.$(ref_hint)"
  run docker tag "$REGISTRY/manchengo:$TAG" "manchengo:$TAG"
else
  info "construction de manchengo:$TAG…"
  build_args=(--build-arg "MANCHENGO_GIT_COMMIT=$TAG")
  version=
  if [[ -f Cargo.toml ]]; then
    version=$(sed -n '/^\[workspace\.package\]/,/^\[/ s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)
  fi
  [[ -n $version ]] && build_args+=(--build-arg "MANCHENGO_VERSION=$version")
  run docker build "${build_args[@]}" -t "manchengo:$TAG" . || die "docker build a échoué.$(ref_hint)"
fi

# Bookkeeping of what runs now. A host installed by hand (`docker compose up`) has manchengo:current but no
# .deploy/current: that image gets a tag of its own so it can be rolled back to. On a brand-new host the new image
# becomes manchengo:current right away, so that compose does not build a second one for the backup below.
OLD_CURRENT=$(state_get current)
OLD_PREVIOUS=$(state_get previous)
if [[ -n $OLD_CURRENT && -z $REGISTRY ]] && ! image_exists "manchengo:$OLD_CURRENT"; then
  warn "image manchengo:$OLD_CURRENT (version en service) absente localement : un retour arrière vers elle serait impossible."
fi
if [[ -z $OLD_CURRENT ]]; then
  if image_exists manchengo:current; then
    OLD_CURRENT=$(docker image inspect -f '{{index .Config.Labels "dz.manchengo.git-commit"}}' manchengo:current \
      2> /dev/null) || OLD_CURRENT=
    [[ $OLD_CURRENT =~ ^[0-9a-f]{7,40}$ && $OLD_CURRENT != "$TAG" ]] || OLD_CURRENT=initial
    info "version en service sans historique : manchengo:current étiquetée manchengo:$OLD_CURRENT."
    run docker tag manchengo:current "manchengo:$OLD_CURRENT"
  else
    info "première installation : manchengo:current ← manchengo:$TAG."
    run docker tag "manchengo:$TAG" manchengo:current
  fi
fi

# ---------------------------------------------------------------------------------------------------------------------
# 3. Pre-deploy backup (by the running release's image)
# ---------------------------------------------------------------------------------------------------------------------
STEP="sauvegarde"
info "sauvegarde pré-déploiement pre-deploy-$TAG…"
run infra/backup/backup-postgres.sh --label "pre-deploy-$TAG" \
  || die "sauvegarde pré-déploiement échouée : déploiement arrêté, rien n'a été modifié.$(ref_hint)"

# ---------------------------------------------------------------------------------------------------------------------
# 4. Migrations with the new image (expand-only: the old binary keeps serving)
# ---------------------------------------------------------------------------------------------------------------------
STEP="migrations"
info "migrations avec manchengo:$TAG…"
run docker run --rm --network manchengo -v "$PWD/.env:/etc/manchengo/manchengo.env:ro" \
  -e MANCHENGO_ENV_FILE=/etc/manchengo/manchengo.env "manchengo:$TAG" manchengo migrate \
  || die "migrations échouées : l'ancienne version sert toujours (chaque migration est une transaction) ; sauvegarde pre-deploy-$TAG disponible.$(ref_hint)"

# ---------------------------------------------------------------------------------------------------------------------
# 5. previous ← current; manchengo:current ← the new image
# ---------------------------------------------------------------------------------------------------------------------
STEP="bascule"
# Re-deploying the running tag keeps the previous one.
[[ $OLD_CURRENT == "$TAG" ]] || state_set previous "$OLD_CURRENT"
run docker tag "manchengo:$TAG" manchengo:current

# ---------------------------------------------------------------------------------------------------------------------
# 6–7. Rolling restart behind the health gate
# ---------------------------------------------------------------------------------------------------------------------
STEP="redémarrage"
rc=0
rolling_restart || rc=$?
if ((rc == 0)); then
  state_set current "$TAG"
  info "déploiement de $TAG réussi (précédente : ${OLD_CURRENT:-aucune} ; retour arrière : infra/deploy/rollback.sh)."
  exit 0
fi

STEP="bilan de santé ($FAILED_SERVICE)"
if [[ -z $OLD_CURRENT || $OLD_CURRENT == "$TAG" ]]; then
  RESULT="échec : $STEP ; aucune version précédente"
  die "bilan de santé échoué sur $FAILED_SERVICE et aucune version précédente vers laquelle revenir : intervention manuelle (docker compose logs $FAILED_SERVICE)."
fi
warn "bilan de santé échoué sur $FAILED_SERVICE : retour automatique à $OLD_CURRENT (la base n'est pas modifiée)."
rollback_ok=true
MANCHENGO_DEPLOY_AUTO=1 infra/deploy/rollback.sh --to "$OLD_CURRENT" || rollback_ok=false
# The failed release never became current: both records are as before the deployment.
state_set previous "$OLD_PREVIOUS"
if [[ $rollback_ok == true ]]; then
  RESULT="échec : $STEP ; retour à $OLD_CURRENT réussi"
  fail "déploiement de $TAG échoué ; $OLD_CURRENT est de nouveau en service.$(ref_hint)"
else
  RESULT="échec : $STEP ; retour à $OLD_CURRENT échoué"
  fail "déploiement de $TAG échoué ET retour automatique à $OLD_CURRENT échoué : intervention manuelle, puis" \
    "infra/deploy/rollback.sh --to $OLD_CURRENT (docs/RUNBOOK.md#rollback).$(ref_hint)"
fi
exit 1
