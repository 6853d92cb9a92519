#!/usr/bin/env bash
# Writes the NATS authorization block of the mesh: one user per service whose password file is in
# PASSWORD_DIR (its name is the service's), allowed to publish only its own events and dead letters,
# to create, read and acknowledge only its own durable consumers on the streams it reads
# (NATS_CONSUMERS in lib.sh), to listen to the subjects NATS_LISTENS gives it and to receive
# replies only on its own inbox prefix; plus `operator`
# (file `operator`), who may do anything (dead-letter replays, inspection, tests). The file holds
# bcrypt hashes, never a password. Used by the local stack (infra.sh) and the end-to-end tests.
#
#   nats-auth.sh OUT_FILE PASSWORD_DIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] || die "usage: nats-auth.sh OUT_FILE PASSWORD_DIR"
out="$1"; dir="$2"

rules=()
for entry in "${SERVICES[@]}"; do
  service="${entry%%:*}"
  rules+=("$service=${NATS_CONSUMERS[$service]:-}=${NATS_LISTENS[$service]:-}")
done

(umask 077
 "$VENV/bin/python" - "$out" "$dir" "${rules[@]}" <<'PY'
import json, os, sys

import bcrypt

out, pwdir, rules = sys.argv[1], sys.argv[2], sys.argv[3:]

def hashed(name):
    with open(os.path.join(pwdir, name), "rb") as f:
        password = f.read().strip()
    return bcrypt.hashpw(password, bcrypt.gensalt(rounds=10)).decode()

def service_user(service, consumers, listens):
    stream = service.upper()
    publish = [
        f"taskmesh.{service}.v1.>",
        "$JS.API.INFO",
    ]
    # The relay keeps its own stream and the dead-letter stream in shape.
    for own in (stream, "DEAD_LETTERS"):
        publish += [f"$JS.API.STREAM.{verb}.{own}" for verb in ("INFO", "CREATE", "UPDATE")]
    # `dead-letters list` reads them; replaying is the operator's.
    publish += ["$JS.API.STREAM.MSG.GET.DEAD_LETTERS", "$JS.API.DIRECT.GET.DEAD_LETTERS"]
    for pair in consumers:
        source, durable = pair.split(":")
        publish += [
            f"taskmesh.deadletter.{durable}",
            # A consumer may start before the stream's own service: it creates the stream, with
            # the same settings, but never changes it.
            f"$JS.API.STREAM.INFO.{source}",
            f"$JS.API.STREAM.CREATE.{source}",
            f"$JS.API.CONSUMER.INFO.{source}.{durable}",
            f"$JS.API.CONSUMER.CREATE.{source}.{durable}",
            f"$JS.API.CONSUMER.CREATE.{source}.{durable}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{source}.{durable}",
            f"$JS.API.CONSUMER.MSG.NEXT.{source}.{durable}",
            f"$JS.ACK.{source}.{durable}.>",
        ]
    return {
        "user": service,
        "password": hashed(service),
        "permissions": {
            "publish": {"allow": sorted(set(publish))},
            "subscribe": {"allow": [f"_INBOX_{service}.>"] + listens},
        },
    }

users = []
for rule in rules:
    service, consumers, listens = rule.split("=")
    if os.path.exists(os.path.join(pwdir, service)):
        users.append(service_user(service, consumers.split(), listens.split()))
if os.path.exists(os.path.join(pwdir, "operator")):
    users.append({"user": "operator", "password": hashed("operator")})

# The NATS configuration format reads JSON; the hashes are quoted strings, never variables.
with open(out + ".tmp", "w") as f:
    f.write("authorization: ")
    json.dump({"users": users}, f, indent=2)
    f.write("\n")
os.replace(out + ".tmp", out)
PY
)
