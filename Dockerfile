# Manchengo Smart ERP — image de l'application (PLATFORM.md §13.1).
#
#   docker build -t manchengo:$TAG \
#     --build-arg MANCHENGO_VERSION=0.1.0 \
#     --build-arg MANCHENGO_GIT_COMMIT="$(git rev-parse --short=12 HEAD)" .
#
# Un seul binaire (`manchengo`) qui embarque gabarits, fichiers statiques et migrations ; pas d'ENTRYPOINT, donc
# `docker compose run --rm backend manchengo migrate` fonctionne tel quel.

# ---------------------------------------------------------------------------------------------------------------------
# 1. Construction
# ---------------------------------------------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder

WORKDIR /build

# Cache des dépendances : les manifestes seuls, avec des sources factices, puis `cargo build` des dépendances. Cette
# couche n'est reconstruite que si Cargo.toml / Cargo.lock changent. (Ajouter ici toute nouvelle crate du workspace.)
COPY Cargo.toml Cargo.lock ./
COPY crates/domain/Cargo.toml crates/domain/Cargo.toml
COPY crates/store/Cargo.toml crates/store/Cargo.toml
COPY crates/app/Cargo.toml crates/app/Cargo.toml
COPY crates/manchengo/Cargo.toml crates/manchengo/Cargo.toml
RUN mkdir -p crates/domain/src crates/store/src crates/app/src crates/manchengo/src crates/manchengo/tests/it static \
    && touch crates/domain/src/lib.rs crates/store/src/lib.rs crates/app/src/lib.rs \
    && echo 'fn main() {}' > crates/manchengo/src/main.rs \
    && echo 'fn main() {}' > crates/manchengo/tests/it/main.rs \
    && cargo build --release --locked -p manchengo \
    && rm -rf crates/*/src crates/manchengo/tests \
        target/release/.fingerprint/domain-* target/release/.fingerprint/store-* \
        target/release/.fingerprint/app-* target/release/.fingerprint/manchengo-* \
        target/release/deps/libdomain-* target/release/deps/libstore-* target/release/deps/libapp-* \
        target/release/deps/manchengo-* target/release/manchengo

# Les vraies sources (gabarits askama et fichiers statiques compris : ils sont embarqués dans le binaire).
COPY crates crates
COPY static static

# Commit : MANCHENGO_GIT_COMMIT visible par option_env!() à la compilation (`manchengo version`,
# /api/health/detailed) et étiquette de l'image. Sans valeur, la variable n'est pas définie (commit « inconnu »).
# Déclaré après la copie des sources : changer de commit ne reconstruit pas la couche des dépendances.
ARG MANCHENGO_GIT_COMMIT=""
ENV MANCHENGO_GIT_COMMIT=${MANCHENGO_GIT_COMMIT}
RUN find crates -name '*.rs' -exec touch {} + \
    && if [ -z "${MANCHENGO_GIT_COMMIT}" ]; then unset MANCHENGO_GIT_COMMIT; fi \
    && cargo build --release --locked -p manchengo \
    && install -m 0755 target/release/manchengo /usr/local/bin/manchengo \
    && /usr/local/bin/manchengo version

# ---------------------------------------------------------------------------------------------------------------------
# 2. Exécution
# ---------------------------------------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# Version (par défaut celle du workspace, Cargo.toml) et commit, en étiquettes.
ARG MANCHENGO_VERSION=0.1.0
ARG MANCHENGO_GIT_COMMIT=""
LABEL org.opencontainers.image.title="manchengo" \
      org.opencontainers.image.description="Manchengo Smart ERP" \
      org.opencontainers.image.version="${MANCHENGO_VERSION}" \
      org.opencontainers.image.revision="${MANCHENGO_GIT_COMMIT}" \
      dz.manchengo.version="${MANCHENGO_VERSION}" \
      dz.manchengo.git-commit="${MANCHENGO_GIT_COMMIT}"

# ca-certificates (Sentry, copies hors site), tzdata, gzip / age / openssl (sauvegardes compressées et chiffrées),
# postgresql-client-15 (pg_dump / pg_restore / psql du conteneur backup, même version majeure que le serveur).
# Versions non figées (DL3008) : bookworm retire les anciennes versions à chaque correctif de sécurité ; l'image de
# base est figée par son étiquette et chaque image publiée est étiquetée par commit.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates tzdata gzip age openssl postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 manchengo \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin manchengo \
    && mkdir -p /app/data /backups \
    && chown 10001:10001 /app /app/data /backups \
    && chmod 0700 /app/data

COPY --from=builder /usr/local/bin/manchengo /usr/local/bin/manchengo

# manchengo:manchengo (uid/gid numériques : résolus sans /etc/passwd, par exemple par un runAsNonRoot).
USER 10001:10001
WORKDIR /app
ENV BIND_ADDR=0.0.0.0 PORT=3000 DATA_DIR=/app/data
EXPOSE 3000

# /api/health/ready : 200 si prêt ou dégradé (pas de curl dans l'image).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 CMD ["manchengo","healthcheck"]

CMD ["manchengo","serve"]
