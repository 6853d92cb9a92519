"""What the deployment files are made from, read from the project itself, never typed again:

- the services and their ports: `SERVICES` in deploy/local/lib.sh, the list `make up` starts;
- each workload's settings and upstream clients: its binary's `show-config` (the kit command), so
  the call graph is the endpoints the services are configured to call;
- the RPCs, whether each is a read (its `google.api.http` rule is GET) and whether it streams: the
  contracts under proto/, compiled with grpcio-tools' protoc.

Used by generate.py (which writes the manifests) and check.py (which checks what they render to).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "deploy" / "local" / "lib.sh"
# The gateway is a workload like the services, without a database or Vault login of its own.
GATEWAY = "gateway"
# The namespace both overlays deploy into: mesh identities (Istio principals) name it.
NAMESPACE = "taskmesh"
# Keys of a configuration that name an upstream but are not a service of the platform.
NOT_UPSTREAMS = {"telemetry.otlp_endpoint"}


def binary_dir() -> Path:
    """Where the built binaries are: $TASKMESH_BIN_DIR, else the Makefile's target dir."""
    if os.environ.get("TASKMESH_BIN_DIR"):
        return Path(os.environ["TASKMESH_BIN_DIR"])
    target = os.environ.get("CARGO_TARGET_DIR")
    if not target:
        sys.exit("set CARGO_TARGET_DIR (as the Makefile does) or TASKMESH_BIN_DIR")
    return Path(target) / "debug"


def services() -> list[tuple[str, int]]:
    """The services of the platform in start order, with their gRPC ports (lib.sh's SERVICES)."""
    out = subprocess.run(
        ["bash", "-c", 'source "$1" >/dev/null; printf "%s\\n" "${SERVICES[@]}"', "-", str(LIB)],
        check=True, capture_output=True, text=True,
    ).stdout
    pairs = []
    for line in out.split():
        name, port = line.split(":")
        pairs.append((name, int(port)))
    return pairs


def show_config(workload: str, config_file: Path | None = None, env: dict | None = None) -> dict:
    """The workload's effective configuration, as its binary prints it (`show-config`)."""
    args = [str(binary_dir() / workload)]
    if config_file is not None:
        args += ["--config", str(config_file)]
    args.append("show-config")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TASKMESH_")}
    clean.update(env or {})
    done = subprocess.run(args, capture_output=True, text=True, env=clean)
    if done.returncode != 0:
        raise SystemExit(f"{workload} show-config failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def flatten(value, path=""):
    """(dotted key, value) for every leaf of a JSON document; list items keep their parent's key."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from flatten(inner, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for inner in value:
            yield from flatten(inner, path)
    else:
        yield path, value


def upstream_urls(config: dict) -> list[tuple[str, str]]:
    """(config key, URL) of every upstream client in a configuration: the keys `endpoint` and
    `*_endpoint`, minus those that are not services (telemetry). A service's own settings and the
    runtime's sit under `settings.` and `mesh.` in `show-config`; the key is given without them."""
    found = []
    for key, value in flatten(config):
        short = key.split(".", 1)[1] if key.split(".")[0] in ("mesh", "settings") else key
        if not key.split(".")[-1].endswith("endpoint") or short in NOT_UPSTREAMS:
            continue
        if value is None:
            continue
        found.append((short, value))
    return found


def port_of(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


@dataclass
class Rpc:
    service: str  # the proto service, `taskmesh.tasks.v1.TaskService`
    method: str
    read: bool  # its HTTP rule is GET: no side effects, safe to retry
    streams: bool  # a stream either way: no request timeout

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.method}"


@dataclass
class Workload:
    name: str
    grpc_port: int
    admin_port: int
    http_port: int | None = None  # the gateway's REST/grpc-web listener
    grace_ms: int = 10_000
    timeout_ms: int = 30_000  # a unary call's timeout, from the gateway's upstream settings
    uses_vault: bool = True
    rpcs: list[Rpc] = field(default_factory=list)


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _fields(data: bytes):
    """(field number, value) of each field of a serialized message: an int for varints and fixed
    widths, bytes for length-delimited fields."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, at = int.from_bytes(data[at:at + width], "little"), at + width
        elif wire == 2:
            size, at = _varint(data, at)
            value, at = data[at:at + size], at + size
        else:
            raise ValueError(f"unexpected wire type {wire}")
        yield number, value


# `google.api.http` on MethodOptions, and HttpRule's pattern fields.
HTTP_OPTION = 72295728
HTTP_VERBS = {2: "GET", 3: "PUT", 4: "POST", 5: "DELETE", 6: "PATCH", 8: "CUSTOM"}


def _http_verb(options: bytes) -> str | None:
    """The verb of a method's `google.api.http` rule, read off its serialized options."""
    for number, value in _fields(options):
        if number == HTTP_OPTION:
            for inner, _ in _fields(value):
                if inner in HTTP_VERBS:
                    return HTTP_VERBS[inner]
    return None


def rpcs() -> dict[str, list[Rpc]]:
    """Every RPC of the contracts, by the platform service that serves it (`taskmesh.<name>.v1`)."""
    from google.protobuf import descriptor_pb2  # grpcio-tools brings protobuf

    protos = sorted(str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto" / "taskmesh").rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}",
             # buf/validate/validate.proto, put there by install.sh (see buf.yaml)
             f"-I{Path(os.environ.get('TASKMESH_HOME', ROOT / '.taskmesh')) / 'protovalidate'}",
             f"--descriptor_set_out={out}", *protos],
            check=True,
        )
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    by_service: dict[str, list[Rpc]] = {}
    for file in files.file:
        parts = file.package.split(".")
        if len(parts) != 3 or parts[0] != "taskmesh":
            continue
        for service in file.service:
            for method in service.method:
                verb = _http_verb(method.options.SerializeToString())
                by_service.setdefault(parts[1], []).append(Rpc(
                    service=f"{file.package}.{service.name}",
                    method=method.name,
                    read=verb == "GET",
                    streams=method.client_streaming or method.server_streaming,
                ))
    return by_service


def workloads() -> tuple[list[Workload], dict[str, dict]]:
    """Every workload (the services, then the gateway) and its default configuration."""
    all_rpcs = rpcs()
    gateway = show_config(GATEWAY)
    timeouts = {
        u["prefix"].split(".")[1]: u["timeout_ms"] for u in gateway["upstreams"]
    }
    found, configs = [], {}
    for name, port in services():
        # The kit refuses an incomplete Vault login; the cluster's method needs nothing more.
        config = show_config(name, env={"TASKMESH_VAULT__AUTH": "kubernetes"})
        configs[name] = config
        mesh = config["mesh"]
        if port_of(mesh["grpc"]["listen"]) != port:
            raise SystemExit(f"{name}: lib.sh says port {port}, the binary {mesh['grpc']['listen']}")
        found.append(Workload(
            name=name,
            grpc_port=port,
            admin_port=port_of(mesh["admin"]["listen"]),
            grace_ms=mesh["shutdown"]["grace_period_ms"],
            timeout_ms=timeouts.get(name, 30_000),
            rpcs=all_rpcs.get(name, []),
        ))
    configs[GATEWAY] = gateway
    found.append(Workload(
        name=GATEWAY,
        grpc_port=port_of(gateway["grpc_listen"]),
        admin_port=port_of(gateway["admin_listen"]),
        http_port=port_of(gateway["http_listen"]),
        grace_ms=gateway["grace_period_ms"],
        uses_vault=False,
    ))
    return found, configs


def service_ports(workloads: list[Workload]) -> dict[int, str]:
    """Which service listens on which gRPC port: how a local-stack URL names its service."""
    return {w.grpc_port: w.name for w in workloads if w.name != GATEWAY}


def host_of(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)


def in_cluster(url: str, by_port: dict[int, str]) -> str:
    """`http://127.0.0.1:50052` (a local-stack default) as the cluster's `http://projects:50052`."""
    host, port = host_of(url)
    if host not in ("127.0.0.1", "localhost") or port not in by_port:
        raise SystemExit(f"upstream {url} is not a service of the platform")
    return f"http://{by_port[port]}:{port}"


def seconds(ms: int) -> str:
    return f"{math.ceil(ms / 1000)}s"


