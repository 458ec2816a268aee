#!/usr/bin/env bash
# On-demand verified backup (PLATFORM.md §12.1) run by the backup service's image:
#   infra/backup/backup-postgres.sh [--label pre-deploy-<sha>]
set -euo pipefail
cd "$(dirname "$0")/../.."
exec docker compose run --rm backup manchengo backup "$@"
