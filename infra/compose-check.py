#!/usr/bin/env python3
"""Vérifie docker-compose.yml contre PLATFORM.md §13.2 et .env.production.example contre la table VARS.

Sans moteur de conteneurs (CI, §13.5), ce script prouve ce que le runbook suppose du fichier compose : services et noms
de conteneurs, réseau et adresses fixes, réglages des instances applicatives, dépendances, journaux, contrôles de
santé, et que chaque variable ${VAR} du fichier compose est définie dans .env.production.example, qui ne contient que
des variables connues du binaire (crates/app/src/config.rs).

Usage : python3 infra/compose-check.py [--root DOSSIER]
Sortie : « docker-compose.yml : conforme » et code 0, ou une ligne en français par problème et code 1.
Dépendances : Python 3 (bibliothèque standard) et PyYAML (yaml.safe_load résout les ancres et les clés de fusion <<).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - dépend de la machine
    print("compose-check : PyYAML manquant (apt-get install python3-yaml ou pip install pyyaml)", file=sys.stderr)
    sys.exit(2)

# Services → noms de conteneurs (§13.2, noms utilisés par le runbook : `docker stats manchengo-backend`…).
CONTAINERS = {
    "backend": "manchengo-backend",
    "web": "manchengo-web",
    "postgres": "manchengo-postgres",
    "redis": "manchengo-redis",
    "nginx": "manchengo-nginx",
    "certbot": "manchengo-certbot",
    "backup": "manchengo-backup",
}
NETWORK = "manchengo"
SUBNET = "172.28.0.0/24"
GATEWAY = "172.28.0.1"
STATIC_IPS = {"nginx": "172.28.0.10", "backend": "172.28.0.20", "web": "172.28.0.21"}
APP_SERVICES = ("backend", "web")
# Services qui lisent le fichier .env monté (aucune variable applicative dans leur environnement, §3.1).
ENV_FILE_SERVICES = ("backend", "web", "backup")
ENV_FILE_TARGET = "/etc/manchengo/manchengo.env"
ALLOWED_APP_ENV = {"MANCHENGO_ENV_FILE", "INSTANCE_NAME", "BIND_ADDR"}
# Variables propres au fichier compose, admises dans .env.production.example si le fichier compose les utilise.
COMPOSE_ONLY_VARS = ("POSTGRES_PASSWORD", "REDIS_PASSWORD")

# Référence de variable à la manière de compose : $$ est un « $ » littéral, puis ${VAR…} ou $VAR.
VAR_REF = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|([A-Za-z_][A-Za-z0-9_]*))")
ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")
# Noms lus par le binaire : var("X", …) / secret("X", …) de la table VARS (éventuellement sur la ligne suivante).
CONFIG_VAR = re.compile(r'\bvar\(\s*"([A-Z_][A-Z0-9_]*)"|\bsecret\(\s*"([A-Z_][A-Z0-9_]*)"')


class Checker:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[str] = []

    def problem(self, message: str) -> None:
        self.problems.append(message)

    # ---------------------------------------------------------------------------------------------------------------
    # Lecture
    # ---------------------------------------------------------------------------------------------------------------

    def load_compose(self, path: Path) -> dict | None:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as e:
            self.problem(f"{path.name} : illisible ({e.strerror})")
            return None
        except yaml.YAMLError as e:
            self.problem(f"{path.name} : YAML invalide ({str(e).splitlines()[0]})")
            return None
        if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
            self.problem(f"{path.name} : section services absente")
            return None
        return data

    def env_example_names(self, path: Path) -> list[str]:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            self.problem(f"{path.name} : illisible ({e.strerror})")
            return []
        names = []
        for n, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            m = ENV_LINE.match(line)
            if not m:
                self.problem(f"{path.name} ligne {n} : KEY=valeur attendu")
                continue
            if m.group(1) in names:
                self.problem(f"{path.name} : variable {m.group(1)} définie deux fois")
            names.append(m.group(1))
        return names

    def known_names(self, path: Path) -> set[str]:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            self.problem(f"{path.relative_to(self.root)} : illisible ({e.strerror}), variables connues introuvables")
            return set()
        names = {a or b for a, b in CONFIG_VAR.findall(text)}
        if not names:
            self.problem(f"{path.relative_to(self.root)} : aucune variable var(\"…\")/secret(\"…\") trouvée")
        return names

    # ---------------------------------------------------------------------------------------------------------------
    # Vérifications
    # ---------------------------------------------------------------------------------------------------------------

    def check_services(self, services: dict) -> None:
        for name, container in CONTAINERS.items():
            svc = services.get(name)
            if not isinstance(svc, dict):
                self.problem(f"service {name} absent")
                continue
            if svc.get("container_name") != container:
                self.problem(f"service {name} : container_name {svc.get('container_name')!r} au lieu de {container!r}")
        for name in services:
            if name not in CONTAINERS:
                self.problem(f"service {name} inattendu (PLATFORM.md §13.2 en liste sept)")

    def check_network(self, data: dict, services: dict) -> None:
        net = (data.get("networks") or {}).get(NETWORK)
        if not isinstance(net, dict):
            self.problem(f"réseau {NETWORK} absent")
            return
        if net.get("name") != NETWORK:
            self.problem(f"réseau {NETWORK} : nom explicite « name: {NETWORK} » attendu")
        if net.get("driver", "bridge") != "bridge":
            self.problem(f"réseau {NETWORK} : pilote bridge attendu, pas {net.get('driver')!r}")
        configs = ((net.get("ipam") or {}).get("config")) or []
        subnet_cfg = next((c for c in configs if isinstance(c, dict) and c.get("subnet") == SUBNET), None)
        if subnet_cfg is None:
            self.problem(f"réseau {NETWORK} : sous-réseau {SUBNET} absent")
            return
        if subnet_cfg.get("gateway") != GATEWAY:
            self.problem(f"réseau {NETWORK} : passerelle {GATEWAY} attendue, pas {subnet_cfg.get('gateway')!r}")
        subnet = ipaddress.ip_network(SUBNET)
        ip_range = None
        if subnet_cfg.get("ip_range"):
            try:
                ip_range = ipaddress.ip_network(subnet_cfg["ip_range"])
            except ValueError:
                self.problem(f"réseau {NETWORK} : ip_range {subnet_cfg['ip_range']!r} invalide")
        for name, expected in STATIC_IPS.items():
            svc = services.get(name)
            if not isinstance(svc, dict):
                continue
            nets = svc.get("networks")
            addr = nets.get(NETWORK, {}).get("ipv4_address") if isinstance(nets, dict) and nets.get(NETWORK) else None
            if addr != expected:
                self.problem(f"service {name} : adresse fixe {expected} attendue sur le réseau {NETWORK}, "
                             f"trouvé {addr!r}")
                continue
            ip = ipaddress.ip_address(addr)
            if ip not in subnet:
                self.problem(f"service {name} : {addr} hors du sous-réseau {SUBNET}")
            if ip_range is not None and ip in ip_range:
                self.problem(f"service {name} : {addr} dans la plage dynamique {ip_range} (risque de conflit)")
        for name, svc in services.items():
            if not isinstance(svc, dict):
                continue
            nets = svc.get("networks")
            attached = nets if isinstance(nets, (list, dict)) else []
            if NETWORK not in attached:
                self.problem(f"service {name} : non relié au réseau {NETWORK}")

    def check_app(self, services: dict) -> None:
        expected = {"mem_limit": "512m", "read_only": True, "stop_grace_period": "30s", "restart": "unless-stopped"}
        for name in APP_SERVICES:
            svc = services.get(name)
            if not isinstance(svc, dict):
                continue
            for key, value in expected.items():
                got = svc.get(key)
                same = got is value if isinstance(value, bool) else str(got).lower() == value
                if not same:
                    self.problem(f"service {name} : {key} {value!r} attendu, trouvé {got!r}")
            if svc.get("image") != "manchengo:current":
                self.problem(f"service {name} : image manchengo:current attendue, trouvé {svc.get('image')!r}")
            if svc.get("healthcheck", {}).get("disable"):
                self.problem(f"service {name} : le HEALTHCHECK de l'image ne doit pas être désactivé")
        backend = services.get("backend") or {}
        if "127.0.0.1:3000:3000" not in [str(p) for p in backend.get("ports") or []]:
            self.problem("service backend : port 127.0.0.1:3000:3000 attendu (runbook : curl localhost:3000)")
        if (services.get("web") or {}).get("ports"):
            self.problem("service web : aucun port publié attendu")
        for name in ENV_FILE_SERVICES:
            svc = services.get(name)
            if not isinstance(svc, dict):
                continue
            if "env_file" in svc:
                self.problem(f"service {name} : env_file interdit (variables figées au redémarrage, §3.1)")
            env = environment(svc)
            extra = sorted(set(env) - ALLOWED_APP_ENV)
            if extra:
                self.problem(f"service {name} : variables applicatives interdites dans environment : "
                             f"{', '.join(extra)}")
            if env.get("MANCHENGO_ENV_FILE") != ENV_FILE_TARGET:
                self.problem(f"service {name} : MANCHENGO_ENV_FILE={ENV_FILE_TARGET} attendu")
            mount = next((m for m in mounts(svc) if m[1] == ENV_FILE_TARGET), None)
            if mount is None or mount[0] not in ("./.env", ".env") or not mount[2]:
                self.problem(f"service {name} : ./.env monté en lecture seule sur {ENV_FILE_TARGET} attendu")
        for name in ("backend", "web"):
            svc = services.get(name)
            if isinstance(svc, dict) and environment(svc).get("INSTANCE_NAME") != name:
                self.problem(f"service {name} : INSTANCE_NAME={name} attendu")
        backup = services.get("backup") or {}
        if backup.get("image") != "manchengo:current":
            self.problem("service backup : image manchengo:current attendue")
        if [str(c) for c in as_list(backup.get("command"))] != ["manchengo", "backup", "--daemon"]:
            self.problem('service backup : command ["manchengo","backup","--daemon"] attendue')
        if not (backup.get("healthcheck") or {}).get("disable"):
            self.problem("service backup : healthcheck désactivé attendu (disable: true)")
        if not any(m[1] == "/backups" for m in mounts(backup)):
            self.problem("service backup : répertoire hôte monté sur /backups attendu")

    def check_postgres_redis(self, services: dict) -> None:
        pg = services.get("postgres")
        if isinstance(pg, dict):
            env = environment(pg)
            for key, value in (("POSTGRES_USER", "manchengo"), ("POSTGRES_DB", "manchengo_erp")):
                if env.get(key) != value:
                    self.problem(f"service postgres : {key}={value} attendu, trouvé {env.get(key)!r}")
            if not str(env.get("POSTGRES_PASSWORD", "")).startswith("${POSTGRES_PASSWORD:?"):
                self.problem("service postgres : POSTGRES_PASSWORD=${POSTGRES_PASSWORD:?} attendu")
            if not str(pg.get("image", "")).startswith("postgres:15"):
                self.problem(f"service postgres : image postgres:15… attendue, trouvé {pg.get('image')!r}")
            if not any(m[0] == "pgdata" for m in mounts(pg)):
                self.problem("service postgres : volume pgdata attendu")
            test = healthcheck_text(pg)
            if "pg_isready" not in test or "-U manchengo" not in test or "-d manchengo_erp" not in test:
                self.problem("service postgres : healthcheck « pg_isready -U manchengo -d manchengo_erp » attendu")
        redis = services.get("redis")
        if isinstance(redis, dict):
            env = environment(redis)
            if "REDIS_PASSWORD" not in str(env.get("REDISCLI_AUTH", "")):
                self.problem("service redis : REDISCLI_AUTH=${REDIS_PASSWORD} attendu (redis-cli ping sans -a)")
            command = " ".join(str(c) for c in as_list(redis.get("command")))
            for needle in ("requirepass", "/tmp/redis.conf", "maxmemory 256mb", "allkeys-lru", "appendonly no"):
                if needle not in command:
                    self.problem(f"service redis : « {needle} » absent de la configuration écrite au démarrage")
            if "--requirepass" in command:
                self.problem("service redis : mot de passe sur la ligne de commande interdit")
            if "redis-cli ping" not in healthcheck_text(redis):
                self.problem("service redis : healthcheck « redis-cli ping » attendu")

    def check_edge(self, services: dict) -> None:
        nginx = services.get("nginx")
        if isinstance(nginx, dict):
            ports = {str(p) for p in nginx.get("ports") or []}
            for port in ("80:80", "443:443"):
                if port not in ports:
                    self.problem(f"service nginx : port {port} attendu")
            targets = {m[1]: m for m in mounts(nginx)}
            for target in (
                "/etc/nginx/nginx.conf",
                "/etc/nginx/conf.d",
                "/etc/nginx/snippets",
                "/usr/share/nginx/html/manchengo",
                "/etc/letsencrypt",
                "/var/www/certbot",
            ):
                if target not in targets:
                    self.problem(f"service nginx : montage sur {target} attendu")
            hook = next((m for m in mounts(nginx) if m[1].startswith("/docker-entrypoint.d/")), None)
            if hook is None:
                self.problem("service nginx : script /docker-entrypoint.d/ du certificat provisoire non monté")
            else:
                self.check_script(hook[0], executable=True)
            test = healthcheck_text(nginx)
            if "nginx -t" not in test or "/nginx-health" not in test:
                self.problem("service nginx : healthcheck « nginx -t » + /nginx-health attendu")
        certbot = services.get("certbot")
        if isinstance(certbot, dict):
            image = str(certbot.get("image", ""))
            if not image.startswith("certbot/certbot:") or image.endswith(":latest"):
                self.problem(f"service certbot : image certbot/certbot à version fixe attendue, trouvé {image!r}")
            entry = " ".join(str(c) for c in as_list(certbot.get("entrypoint")))
            source = next((m[0] for m in mounts(certbot) if m[1] and m[1] in entry), None)
            if source is None or not source.endswith("infra/certbot/entrypoint.sh"):
                self.problem("service certbot : entrypoint infra/certbot/entrypoint.sh attendu")
            else:
                self.check_script(source, executable=False)

    def check_script(self, source: str, executable: bool) -> None:
        path = (self.root / source).resolve()
        # Un fichier absent est signalé par check_bind_sources.
        if path.is_file() and executable and not os.access(path, os.X_OK):
            self.problem(f"{source} : doit être exécutable (chmod +x), sinon l'image nginx l'ignore")

    def check_bind_sources(self, services: dict) -> None:
        """Les fichiers du dépôt montés dans les conteneurs existent (./.env est créé au déploiement)."""
        for name, svc in services.items():
            if not isinstance(svc, dict):
                continue
            for source, target, _ in mounts(svc):
                if source.startswith("./") and source not in ("./.env",) and not (self.root / source).exists():
                    self.problem(f"service {name} : {source} (monté sur {target}) absent du dépôt")

    def check_dependencies_logging(self, services: dict) -> None:
        for name, svc in services.items():
            if not isinstance(svc, dict):
                continue
            deps = svc.get("depends_on") or {}
            items = deps.items() if isinstance(deps, dict) else ((d, None) for d in deps)
            for dep, spec in items:
                if dep not in services:
                    self.problem(f"service {name} : dépend de {dep}, service inconnu")
                condition = spec.get("condition", "service_started") if isinstance(spec, dict) else "service_started"
                if condition != "service_started":
                    self.problem(f"service {name} : depends_on {dep} avec condition {condition} "
                                 "(seul service_started est permis)")
            logging = svc.get("logging") or {}
            options = logging.get("options") or {}
            if logging.get("driver") != "json-file" or "max-size" not in options or "max-file" not in options:
                self.problem(f"service {name} : journalisation json-file avec rotation (max-size, max-file) attendue")

    def check_variables(
        self, data: dict, env_names: list[str], known: set[str], compose_name: str, env_name: str
    ) -> None:
        referenced: set[str] = set()
        for text in strings(data):
            for m in VAR_REF.finditer(text):
                if m.group(1) or m.group(2):
                    referenced.add(m.group(1) or m.group(2))
        for var in sorted(referenced - set(env_names)):
            self.problem(f"{compose_name} utilise ${{{var}}}, absente de {env_name}")
        allowed = set(known) | (set(COMPOSE_ONLY_VARS) & referenced)
        for var in env_names:
            if var not in allowed:
                self.problem(f"{env_name} : variable {var} inconnue du binaire (crates/app/src/config.rs)")
        for var in sorted(set(known) - set(env_names)):
            self.problem(f"{env_name} : variable {var} du binaire absente (le fichier doit toutes les lister)")


# -------------------------------------------------------------------------------------------------------------------
# Aides
# -------------------------------------------------------------------------------------------------------------------


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def environment(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in map(str, env))
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def mounts(svc: dict) -> list[tuple[str, str, bool]]:
    """(source, cible, lecture seule) de chaque volume, syntaxe courte ou longue."""
    out = []
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            out.append((str(v.get("source", "")), str(v.get("target", "")), bool(v.get("read_only"))))
        else:
            parts = str(v).split(":")
            if len(parts) == 1:
                out.append(("", parts[0], False))
            else:
                mode = parts[2] if len(parts) > 2 else ""
                out.append((parts[0], parts[1], "ro" in mode.split(",")))
    return out


def healthcheck_text(svc: dict) -> str:
    test = (svc.get("healthcheck") or {}).get("test")
    return " ".join(str(t) for t in as_list(test))


def strings(node):
    """Toutes les chaînes (clés et valeurs) du document, là où compose interpole."""
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(k, str):
                yield k
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)
    elif isinstance(node, str):
        yield node


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Vérifie docker-compose.yml et .env.production.example (PLATFORM.md §13.2)."
    )
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent, help="racine du dépôt")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    compose_path = root / "docker-compose.yml"
    env_path = root / ".env.production.example"
    config_path = root / "crates" / "app" / "src" / "config.rs"

    c = Checker(root)
    data = c.load_compose(compose_path)
    env_names = c.env_example_names(env_path)
    known = c.known_names(config_path)
    if data is not None:
        services = data["services"]
        c.check_services(services)
        c.check_network(data, services)
        c.check_app(services)
        c.check_postgres_redis(services)
        c.check_edge(services)
        c.check_bind_sources(services)
        c.check_dependencies_logging(services)
        c.check_variables(data, env_names, known, compose_path.name, env_path.name)

    if c.problems:
        for p in c.problems:
            print(p)
        return 1
    print("docker-compose.yml : conforme")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
