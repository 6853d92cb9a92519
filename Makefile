# taskmesh: the two commands of the README, and the steps they are made of.
#   make up    run the whole platform locally (no Docker); Ctrl-C stops it
#   make test  every check: fmt, clippy, buf lint + breaking, all tests against real infrastructure
SHELL := /bin/bash
# One target dir per clone, outside it: cargo decides freshness from the absolute source paths it
# recorded, so two clones sharing one target dir would each reuse the other's stale artifacts.
CLONE_ID := $(shell printf '%s' '$(CURDIR)' | md5sum | cut -c1-12)
export CARGO_TARGET_DIR ?= $(HOME)/.cache/taskmesh/target/$(CLONE_ID)
# Where this clone's local stack lives; tests find it here at run time.
export TASKMESH_HOME ?= $(CURDIR)/.taskmesh
LOCAL := deploy/local

.PHONY: up down test install infra fmt clippy buf stack-checks deploy-checks deploy-manifests deploy-smoke nextest

up:
	@$(LOCAL)/up.sh

down:
	@$(LOCAL)/down.sh

install:
	@$(LOCAL)/install.sh

# Reuses a running stack, or starts PostgreSQL, NATS and OpenBao under .taskmesh/ and provisions them.
infra: install
	@$(LOCAL)/infra.sh

test: infra fmt clippy buf stack-checks deploy-checks deploy-smoke nextest

fmt:
	cargo fmt --all --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

buf:
	@$(LOCAL)/buf-check.sh

# The local stack from a clone in a 0700 directory, a second clone meeting this one's stack, and
# the supervisor that restarts a process of `make up` that died.
stack-checks: infra
	@$(LOCAL)/checks/clone-anywhere.sh
	@$(LOCAL)/checks/supervisor.sh
	@$(LOCAL)/checks/vault-secrets.sh

# The deployment files (deploy/k8s): generated parts up to date, every overlay built by kustomize
# and valid against the Kubernetes schemas, security settings, no credential, and the mesh
# policies equal to the call graph the services' configuration gives.
deploy-checks: install
	cargo build --bins --quiet
	@$(LOCAL)/venv-run.sh deploy/tools/check.py

# The images for real, with podman (root): the Dockerfile's runtime stage with this build's
# binaries on a base made from Debian's packages, stand-ins for the official infrastructure
# images, then the whole platform from deploy/docker/compose.yaml driven through its gateway, and
# a killed service container brought back by its restart policy with nothing lost.
deploy-smoke: install
	cargo build --bins --quiet
	@deploy/docker/test/images.sh
	@$(LOCAL)/venv-run.sh deploy/docker/test/smoke.py

# Writes the generated parts of deploy/k8s again after a service, its configuration or a contract
# changed.
deploy-manifests: install
	cargo build --bins --quiet
	@$(LOCAL)/venv-run.sh deploy/tools/generate.py

nextest:
	@$(LOCAL)/drop-test-databases.sh
	cargo nextest run --workspace
