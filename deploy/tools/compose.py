"""deploy/docker/compose.yaml, made by generate.py from the same model as the Kubernetes files:
the infrastructure (PostgreSQL, NATS JetStream, OpenBao dev, a mail server), the provisioning
job in two steps (`keys` before the infrastructure starts, `services` once it is healthy), every
service and the gateway. Each image name comes from a variable whose default is the official
image, so tests can run images built from the programs the local stack installs."""

from __future__ import annotations

import model
from model import GATEWAY, Workload

IMAGE = "${TASKMESH_IMAGE:-taskmesh:0.1.0}"
PROVISION_IMAGE = "${TASKMESH_PROVISION_IMAGE:-taskmesh-provision:0.1.0}"
INFRA_IMAGES = {
    "postgresql": "${TASKMESH_POSTGRES_IMAGE:-docker.io/library/postgres:17}",
    "nats": "${TASKMESH_NATS_IMAGE:-docker.io/library/nats:2.11-alpine}",
    "openbao": "${TASKMESH_OPENBAO_IMAGE:-quay.io/openbao/openbao:2.4.1}",
    "mail": "${TASKMESH_MAIL_IMAGE:-docker.io/maildev/maildev:2.2.1}",
}
HEALTH = {"interval": "5s", "timeout": "5s", "retries": 10, "start_period": "60s"}
HARDENED = {
    "read_only": True,
    "user": "65532:65532",
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    "tmpfs": ["/tmp"],
}


def env_key(dotted: str) -> str:
    return "TASKMESH_" + dotted.upper().replace(".", "__")


def infrastructure() -> dict:
    healthy = {"keys": {"condition": "service_completed_successfully"}}
    return {
        "keys": {
            "image": PROVISION_IMAGE,
            "build": {"context": "../..", "dockerfile": "deploy/docker/Dockerfile", "target": "provision"},
            "command": ["keys"],
            "volumes": ["provision:/provision", "nats-auth:/nats-auth"],
            "restart": "no",
        },
        "postgresql": {
            "image": INFRA_IMAGES["postgresql"],
            "command": ["postgres", "-c", "max_connections=400"],
            "environment": {"POSTGRES_USER": "taskmesh_admin",
                            "POSTGRES_PASSWORD_FILE": "/provision/pg-admin-password"},
            "volumes": ["pgdata:/var/lib/postgresql/data", "provision:/provision:ro"],
            "healthcheck": {"test": ["CMD", "pg_isready", "-U", "taskmesh_admin", "-d", "postgres", "-h", "127.0.0.1"], **HEALTH},
            "depends_on": healthy,
            "restart": "unless-stopped",
        },
        "nats": {
            "image": INFRA_IMAGES["nats"],
            "command": ["--config", "/etc/nats/nats.conf"],
            "volumes": ["./nats.conf:/etc/nats/nats.conf:ro", "nats-auth:/etc/nats/auth:ro", "natsdata:/data"],
            "healthcheck": {"test": ["CMD", "wget", "-q", "-O", "/dev/null",
                                     "http://127.0.0.1:8222/healthz?js-enabled-only=true"], **HEALTH},
            "depends_on": healthy,
            "restart": "unless-stopped",
        },
        "openbao": {
            "image": INFRA_IMAGES["openbao"],
            # A dev server (in memory): its root token is the one `keys` made, so that
            # `services` can provision it; nothing else reads that volume.
            "entrypoint": ["sh", "-c", "exec bao server -dev -dev-listen-address=0.0.0.0:8200 "
                           "-dev-no-store-token -dev-root-token-id=\"$$(cat /provision/vault-root-token)\""],
            "environment": {"SKIP_SETCAP": "true", "HOME": "/tmp"},
            "volumes": ["provision:/provision:ro"],
            "healthcheck": {"test": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8200/v1/sys/health"], **HEALTH},
            "depends_on": healthy,
            "restart": "unless-stopped",
        },
        "mail": {
            "image": INFRA_IMAGES["mail"],
            "ports": ["${TASKMESH_MAIL_WEB_PORT:-1080}:1080"],
            "restart": "unless-stopped",
        },
        # The first access-token signing key, made by the identity service's key tool (the
        # service itself may only read it); `identity-keys rotate` makes the next.
        "signing-keys": {
            "image": IMAGE,
            "command": ["/usr/local/bin/identity-keys", "ensure", "--vault-addr", "http://openbao:8200",
                        "--token-file", "/provision/vault-root-token", "--path", "taskmesh/identity/signing-keys"],
            **HARDENED,
            "volumes": ["provision:/provision:ro"],
            "depends_on": {"provision": {"condition": "service_completed_successfully"}},
            "restart": "no",
        },
        "provision": {
            "image": PROVISION_IMAGE,
            "command": ["services"],
            "volumes": ["provision:/provision:ro", "approle:/approle"],
            "depends_on": {
                "postgresql": {"condition": "service_healthy"},
                "nats": {"condition": "service_healthy"},
                "openbao": {"condition": "service_healthy"},
            },
            "restart": "no",
        },
    }


def workload(w: Workload, config: dict, callers: dict[str, set[str]], by_port: dict[int, str]) -> dict:
    command = f"/usr/local/bin/{w.name}"
    env: dict[str, str] = {}
    if w.name == GATEWAY:
        env["TASKMESH_HTTP_LISTEN"] = f"0.0.0.0:{w.http_port}"
        env["TASKMESH_GRPC_LISTEN"] = f"0.0.0.0:{w.grpc_port}"
        env["TASKMESH_ADMIN_LISTEN"] = f"0.0.0.0:{w.admin_port}"
        endpoint = model.in_cluster(config["auth"]["identity_endpoint"], by_port)
        env["TASKMESH_AUTH__IDENTITY_ENDPOINT"] = endpoint
        tables = []
        for u in config["upstreams"]:
            url = model.in_cluster(u["endpoint"], by_port)
            tables.append(f'{{prefix="{u["prefix"]}",endpoint="{url}",timeout_ms={u["timeout_ms"]}}}')
        env["TASKMESH_UPSTREAMS"] = "[" + ",".join(tables) + "]"
        env["TASKMESH_PUBLIC_URL"] = "${TASKMESH_PUBLIC_URL:-http://localhost:8080}"
        env["TASKMESH_CORS_ALLOWED_ORIGINS"] = '["${TASKMESH_PUBLIC_URL:-http://localhost:8080}"]'
    else:
        env.update({
            "TASKMESH_GRPC__LISTEN": f"0.0.0.0:{w.grpc_port}",
            "TASKMESH_ADMIN__LISTEN": f"0.0.0.0:{w.admin_port}",
            "TASKMESH_VAULT__ADDR": "http://openbao:8200",
            "TASKMESH_VAULT__AUTH": "approle",
            "TASKMESH_VAULT__ROLE_ID_FILE": f"/run/taskmesh/approle/{w.name}/role-id",
            "TASKMESH_VAULT__SECRET_ID_FILE": f"/run/taskmesh/approle/{w.name}/secret-id",
            "TASKMESH_DATABASE__HOST": "postgresql",
            "TASKMESH_DATABASE__PORT": "5432",
            "TASKMESH_NATS__URL": "nats://nats:4222",
        })
        for key, url in model.upstream_urls(config):
            env[env_key(key)] = model.in_cluster(url, by_port)
        settings = config.get("settings", {})
        if "public_url" in settings:
            env["TASKMESH_PUBLIC_URL"] = "${TASKMESH_PUBLIC_URL:-http://localhost:8080}"
        if "egress" in settings:
            # Jobs may reach these networks although they are private; none unless set (the
            # smoke test lets jobs call the gateway on the compose network).
            env["TASKMESH_EGRESS__ALLOW_NETWORKS"] = "${TASKMESH_JOB_ALLOW_NETWORKS:-[]}"
    # Started after what it calls: the call graph the mesh policies come from.
    upstreams = sorted(callee for callee, who in callers.items() if w.name in who)
    depends = {name: {"condition": "service_healthy"} for name in upstreams}
    if w.uses_vault:
        depends["provision"] = {"condition": "service_completed_successfully"}
        if w.name == "identity":
            depends["signing-keys"] = {"condition": "service_completed_successfully"}
        for infra in ("postgresql", "nats", "openbao"):
            depends[infra] = {"condition": "service_healthy"}
    service = {
        "image": IMAGE,
        "command": [command],
        "environment": env,
        **HARDENED,
        "healthcheck": {"test": ["CMD", command, "probe"], **HEALTH},
        "depends_on": depends,
        # Drain within the service's grace period, then stop.
        "stop_grace_period": f"{model.seconds(w.grace_ms + 5000)}",
        "restart": "unless-stopped",
    }
    if w.uses_vault:
        service["volumes"] = ["approle:/run/taskmesh/approle:ro"]
    if w.name == "identity":
        service["build"] = {"context": "../..", "dockerfile": "deploy/docker/Dockerfile"}
    if w.name == GATEWAY:
        service["ports"] = [f"${{TASKMESH_HTTP_PORT:-{w.http_port}}}:{w.http_port}",
                            f"${{TASKMESH_GRPC_PORT:-{w.grpc_port}}}:{w.grpc_port}"]
    return service


def compose(workloads: list[Workload], configs: dict[str, dict], callers: dict[str, set[str]]) -> dict:
    by_port = model.service_ports(workloads)
    services = infrastructure()
    for w in workloads:
        services[w.name] = workload(w, configs[w.name], callers, by_port)
    return {
        "name": "taskmesh",
        "services": services,
        "volumes": {name: {} for name in ("provision", "nats-auth", "approle", "pgdata", "natsdata")},
        "networks": {"default": {"ipam": {"config": [{"subnet": "${TASKMESH_COMPOSE_SUBNET:-10.89.77.0/24}"}]}}},
    }
