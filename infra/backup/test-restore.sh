#!/usr/bin/env bash
# Restore test (PLATFORM.md §12.4): restores the latest dump into a throw-away database, runs the integrity check,
# always drops it, records the result (health `lastRestoreTestStatus`). Exit 1 loudly on failure.
#   infra/backup/test-restore.sh [--file /backups/manchengo/manchengo_YYYYMMDD_HHMMSS.dump]
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! docker compose run --rm backup manchengo backup test-restore "$@"; then
  echo "ÉCHEC DU TEST DE RESTAURATION : voir docs/RUNBOOK.md#restauration-complete" >&2
  exit 1
fi
