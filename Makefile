# astrago-deploy: the one command surface for people and CI.
# `make help` lists the targets. STACK=<name> picks the stack (default local),
# ARGS=... is passed through to pulumi, e.g. `make preview STACK=dev ARGS=--diff`.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

STACK ?= local
ARGS ?=
TIER ?=
RELEASE ?=

ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
TOOLS := $(ROOT)/.tools/bin
STATE := $(ROOT)/.state

# The engine finds its plugins in the project's plugin cache and never
# downloads one; state defaults to a file backend inside the project.
export PATH := $(TOOLS):$(PATH)
export PULUMI_HOME := $(ROOT)/.tools/pulumi-home
export PULUMI_SKIP_UPDATE_CHECK := 1
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION := true
export PULUMI_BACKEND_URL ?= file://$(STATE)/backend

# The local stack's passphrase is documented and for local use only; every
# other stack takes PULUMI_CONFIG_PASSPHRASE from the caller (CI secrets).
# local-full (`make up-full`) is the same kind of throwaway stack, with the realistic catalog.
ifneq ($(filter local local-full,$(STACK)),)
export PULUMI_CONFIG_PASSPHRASE ?= astrago-local
# The local stack deploys onto `make cluster` unless a kubeconfig is given.
ifeq ($(origin KUBECONFIG),undefined)
export KUBECONFIG := $(STATE)/kubeconfig
LOCAL_CLUSTER := 1
endif
endif

# The project's `pulumi` (toolchain/shims/pulumi), the same one `source toolchain/env.sh` puts on
# PATH: preview and up run the policy pack (policy/README.md), up records who ran it and goes on
# past a failing release, and on the disposable local cluster both refresh first.
PULUMI := $(ROOT)/toolchain/shims/pulumi
ifdef LOCAL_CLUSTER
export ASTRAGO_LOCAL_CLUSTER := 1
endif
# Selective runs: TIER=<tier> or RELEASE=<name> become --target options,
# checked against the catalog first (an unknown name stops the run).
TARGETS = targets="$$($(PY) -m commands.targets --stack $(STACK) --tier '$(TIER)' --release '$(RELEASE)')";

.PHONY: help setup venv tools doctor cluster cluster-down stack up up-full preview destroy refresh test lint \
        lint-ci postgres typecheck audit audit-diff audit-restore audit-verify env-diff images bundle unbundle \
        diff drift recover policy unit e2e go-test values secret charts-sync charts-verify bench-setup bench \
        clean diagnose stack-exists images-push bundle-key chromium fleet pulumi-cli import-helmfile parity \
        set-image test-fast test-tools gnupg

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-14s %s\n", $$1, $$2}'

setup: venv tools ## Install everything: the virtualenv and the pinned toolchain (cached)

venv: $(VENV)/.installed

# Rebuilt only when the pins change.
$(VENV)/.installed: requirements.txt constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	@touch $@

tools: ## Build the pinned Go tools into .tools/bin (only what changed)
	@python3 toolchain/build_tools.py

doctor: ## Show every tool, the state backend and the cluster; fail on anything missing
	@python3 toolchain/doctor.py $(ARGS)

# ARGS reach cluster.py only for `make cluster` itself (`make up ARGS=...` are pulumi's):
# `make cluster ARGS=--replace` (or RECREATE=1) replaces a half-dead cluster, losing what it runs.
cluster: setup ## Start the local simulated cluster with volumes (no-op when it runs; a half-dead one only with ARGS=--replace)
	@python3 cluster/cluster.py up $(if $(RECREATE),--replace) $(if $(filter cluster,$(MAKECMDGOALS)),$(ARGS))

cluster-down: ## Stop the local cluster and remove its data
	@python3 cluster/cluster.py down

# The pre-flight of every target on a stack (commands/stackcheck.py, ~0.2 s CPU): the stack's file and those it
# inherits from are checked (YAML, schema, catalog) before pulumi reads them, naming file and line; a
# STACK without a Pulumi.<stack>.yaml is refused, never created.
STACK_CHECK = $(PY) -m commands.stackcheck --stack $(STACK)

stack: setup ## Create STACK in the backend from its Pulumi.<stack>.yaml (`up` and `secret` do this themselves)
	@$(STACK_CHECK)
	@case "$$PULUMI_BACKEND_URL" in file://*) mkdir -p "$${PULUMI_BACKEND_URL#file://}";; esac
	@$(PULUMI) stack select --create $(STACK) --non-interactive >/dev/null

# The read-only targets never create a stack: they also refuse one the backend does not hold yet.
stack-exists: setup
	@$(STACK_CHECK) --in-backend

up: setup $(if $(LOCAL_CLUSTER),cluster) stack ## Deploy STACK (default: local onto `make cluster`)
	@# On failure, what blocked it (a lock, an interrupted update) and what to do (commands/diagnose.py).
	@$(TARGETS) $(PULUMI) up --yes --stack $(STACK) $$targets $(ARGS) \
	  || { rc=$$?; $(PY) -m commands.diagnose --stack $(STACK) || true; exit $$rc; }

# The whole catalog with the realistic stand-ins of the external charts (tests/realistic_charts),
# dev's settings and persistence, on the local cluster and its volumes (stack local-full).
REALISTIC_CHARTS := $(STATE)/realistic-charts
up-full: setup ## Deploy the whole catalog (realistic chart stand-ins, dev's persistence) onto `make cluster`
	@$(PY) -m tests.support.standin_charts --realistic $(REALISTIC_CHARTS) >/dev/null
	@$(MAKE) --no-print-directory up STACK=local-full ARGS='$(ARGS)'

preview: setup stack-exists ## Show what `up` would change (the diff)
	@$(TARGETS) $(PULUMI) preview --stack $(STACK) $$targets $(ARGS) \
	  || { rc=$$?; $(PY) -m commands.diagnose --stack $(STACK) || true; exit $$rc; }

refresh: setup stack-exists ## Read the cluster's state into the stack
	@$(PULUMI) refresh --yes --stack $(STACK) $(ARGS)

destroy: setup stack-exists ## Remove everything STACK deployed, in reverse tier order
	@$(TARGETS) $(PULUMI) destroy --yes --stack $(STACK) $$targets $(ARGS)

policy: setup stack-exists ## Check STACK against the policy pack (a preview; changes nothing)
	@$(PULUMI) preview --stack $(STACK) --suppress-outputs $(ARGS)

values: venv ## Print the resolved values of RELEASE (or all) for STACK, secrets masked
	@$(PY) -m commands.values --stack $(STACK) $(if $(RELEASE),--release $(RELEASE))

secret: setup stack ## Set secret KEY of STACK (reads the value from stdin, never from the command line)
	@test -n "$(KEY)" || { echo "usage: make secret STACK=<stack> KEY=<key> < value-file"; exit 2; }
	@$(PULUMI) config set --secret --stack $(STACK) $(KEY)

charts-sync: venv ## Fetch declared charts whose declaration changed (where repositories are reachable)
	@$(PY) -m commands.charts sync $(ARGS)

charts-verify: venv ## Check every chart archive against the lock and the lock against the declaration
	@$(PY) -m commands.charts verify $(ARGS)

# The audit and the fleet view need the pinned Pulumi CLI only, not the whole toolchain (an auditor's machine).
pulumi-cli:
	@python3 toolchain/build_tools.py pulumi

audit: venv pulumi-cli ## Report STACK's update history: who, when, commit, charts, changes (OUT=<dir>, default .state/audit)
	@$(PY) -m commands.audit --stack $(STACK) $(if $(OUT),--out-dir $(OUT)) $(ARGS)

audit-diff: venv pulumi-cli ## What changed between updates FROM and TO of STACK (default: the last two); secrets masked
	@$(PY) -m commands.audit diff --stack $(STACK) $(if $(FROM),--from $(FROM)) $(if $(TO),--to $(TO)) $(ARGS)

audit-restore: venv pulumi-cli ## Roll STACK's configuration back to update VERSION: checks only, APPLY=1 writes the files
	@test -n "$(VERSION)" || { echo "usage: make audit-restore STACK=<stack> VERSION=<n> [APPLY=1]"; exit 2; }
	@$(PY) -m commands.audit restore --stack $(STACK) --version $(VERSION) $(if $(APPLY),--apply) $(ARGS)

audit-verify: venv pulumi-cli ## Check this checkout reproduces update VERSION of STACK (after audit-restore and charts-sync)
	@test -n "$(VERSION)" || { echo "usage: make audit-verify STACK=<stack> VERSION=<n>"; exit 2; }
	@$(PY) -m commands.audit verify --stack $(STACK) --version $(VERSION) $(ARGS)

fleet: venv pulumi-cli ## Every stack of the backend: last update, chart versions and digests per release, image tags (OUT=<dir>, default .state/audit)
	@$(PY) -m commands.fleet $(if $(OUT),--out-dir $(OUT)) $(ARGS)
set-image: venv ## Follow a product build: set COMPONENT's image TAG in STACK's file (checked; exactly one value changes)
	@test -n "$(COMPONENT)" -a -n "$(TAG)" || { echo "usage: make set-image STACK=<stack> COMPONENT=<core|batch|monitor|frontend|experiment> TAG=<component>-<env>-<sha>"; exit 2; }
	@$(PY) -m commands.set_image --stack $(STACK) --component $(COMPONENT) --tag $(TAG)

env-diff: venv ## Resolved values that differ between stacks A and B, and releases enabled in one only
	@test -n "$(A)" -a -n "$(B)" || { echo "usage: make env-diff A=<stack> B=<stack>"; exit 2; }
	@$(PY) -m commands.envdiff $(A) $(B) $(ARGS)

diff: setup ## Objects and fields `up` would change in each Helm release of STACK (secrets masked); exit 1 when any differ
	@$(PY) -m commands.diff --stack $(STACK) $(if $(RELEASE),--release $(RELEASE))

drift: setup stack-exists ## What changed behind the program's back in STACK (refresh preview + each release's objects); exit 1 on drift
	@$(PY) -m commands.drift --stack $(STACK)

diagnose: setup ## Why STACK's last `up` failed or cannot run (lock, interrupted update, releases not ready; RELEASE= for one)
	@$(PY) -m commands.diagnose --stack $(STACK) $(if $(RELEASE),--release $(RELEASE)) $(ARGS)

import-helmfile: setup ## Write stack file(s) from a Helmfile site: DIR=<folder> ENV=<env>[,<env>...] [STACK=<name>]; secrets become `make secret` commands
	@test -n "$(DIR)" -a -n "$(ENV)" || { echo "usage: make import-helmfile DIR=<helmfile dir> ENV=<env>[,<env>...] [STACK=<name>]"; exit 2; }
	@$(PY) -m commands.import_helmfile --dir '$(DIR)' --env '$(ENV)' $(if $(filter command line environment,$(origin STACK)),--stack '$(STACK)') $(ARGS)

parity: setup ## Render each release with Helmfile's values (DIR, ENV) and with STACK's; print what differs (secrets masked); exit 1 when anything does
	@test -n "$(DIR)" -a -n "$(ENV)" || { echo "usage: make parity DIR=<helmfile dir> ENV=<env> STACK=<stack>"; exit 2; }
	@$(PY) -m commands.parity --dir '$(DIR)' --env '$(ENV)' --stack '$(STACK)' $(ARGS)

recover: setup stack-exists ## Repair STACK after an interrupted `up`: stale lock, pending operations, pending Helm releases
	@$(PY) -m commands.recover --stack $(STACK) $(if $(RELEASE),--release $(RELEASE)) $(ARGS)

images: setup ## Render STACK's releases; write images/<stack>.lock.yaml (every image they name); warn about images the post-render cannot pin
	@$(PY) -m commands.images --stack $(STACK) $(ARGS)

bundle: setup ## Pack and sign STACK's charts, images (OCI layout), stack file(s) and tool pins into OUT (SIGNING_KEY=, MIRRORS=, REUSE=)
	@$(PY) -m commands.bundle create --stack $(STACK) --out $(or $(OUT),astrago-$(STACK)-bundle.tar) \
		$(if $(SIGNING_KEY),--signing-key $(SIGNING_KEY)) $(if $(MIRRORS),--mirrors $(MIRRORS)) $(foreach r,$(REUSE),--reuse $(r)) $(ARGS)

unbundle: venv ## Verify BUNDLE (signature by TRUSTED_KEY, SHA256=, every file) then unpack it into INTO; REGISTRY= also pushes the images
	@test -n "$(BUNDLE)" || { echo "usage: make unbundle BUNDLE=<bundle.tar> TRUSTED_KEY=<signer.pub> [SHA256=<sha256>] [INTO=<new folder>] [REGISTRY=<host:port>]"; exit 2; }
	@$(PY) -m commands.bundle unpack --bundle $(BUNDLE) $(if $(INTO),--into $(INTO)) $(foreach k,$(TRUSTED_KEY),--trusted-key $(k)) \
		$(if $(SHA256),--sha256 $(SHA256)) $(if $(REGISTRY),--registry $(REGISTRY)) $(if $(REGISTRY_CA),--ca-file $(REGISTRY_CA)) $(ARGS)

images-push: venv ## Push every image of BUNDLE (unpacked folder, or a bundle with TRUSTED_KEY=) to REGISTRY; resumes, checks every digest
	@test -n "$(BUNDLE)" -a -n "$(REGISTRY)" || { echo "usage: make images-push BUNDLE=<unpacked folder> REGISTRY=<host:port> [REGISTRY_CA=<ca.pem>]"; exit 2; }
	@$(PY) -m commands.bundle push --from $(BUNDLE) --registry $(REGISTRY) $(foreach k,$(TRUSTED_KEY),--trusted-key $(k)) \
		$(if $(REGISTRY_CA),--ca-file $(REGISTRY_CA)) $(ARGS)

bundle-key: venv ## Create an Ed25519 bundle signing key OUT (default ~/.config/astrago/bundle-signing.key) and OUT.pub
	@$(PY) -m commands.bundle key --out $(or $(OUT),$(HOME)/.config/astrago/bundle-signing.key)

lint: venv
	@$(VENV)/bin/ruff check .

# Tools `make up` does not need (actionlint, crane): built the first time a target needs them.
test-tools: setup
	@python3 toolchain/build_tools.py --for test

lint-ci: test-tools ## Check the GitHub Actions workflows (actionlint; shellcheck on run: blocks when installed)
	@$(TOOLS)/actionlint .github/workflows/*.yml && echo "actionlint: workflows ok"

postgres: ## Install PostgreSQL from the distribution's packages (for the postgres:// state-backend test)
	@bash toolchain/install-postgres.sh

gnupg: ## Install Debian's GnuPG (the provenance test's throwaway signing key; no-op when gpg is there)
	@bash toolchain/install-gnupg.sh

chromium: ## Install Debian's Chromium (the headless browser the audit page's test renders in)
	@bash toolchain/install-chromium.sh

typecheck: venv
	@$(VENV)/bin/mypy

unit: venv
	@$(PY) -m pytest tests/unit -q

# Go code written here (the others under toolchain/go are upstream modules, pinned).
OWN_GO_MODULES := language-python hooks-provider

go-test: tools
	@for m in $(OWN_GO_MODULES); do (cd toolchain/go/$$m && GOFLAGS=-mod=readonly go test ./...); done

e2e: setup postgres chromium
	@$(PY) -m pytest tests/e2e -q -n $(E2E_WORKERS) --dist loadfile

# The quick lane's tests run side by side (pytest-xdist): they start helm, make and registries
# and wait on them, so more workers than cores still help. The e2e lane runs a file per worker,
# each worker on a cluster of its own (tests/support/engine.py); the files that start and stop
# the main cluster take turns (main_cluster_turn in tests/e2e/conftest.py).
TEST_WORKERS ?= 4
E2E_WORKERS ?= 2

test-fast: venv gnupg lint typecheck ## The quick lane: lint, types, unit and integration tests (no cluster, no engine)
	@$(PY) -m pytest tests -q -m "not e2e" -n $(TEST_WORKERS)

test: setup test-tools postgres chromium gnupg lint typecheck lint-ci ## Run every test: lint, types, unit, Go, end-to-end (cluster + engine)
	@$(PY) -m pytest tests -q -m "not e2e" -n $(TEST_WORKERS)
	@$(PY) -m pytest tests -q -m e2e -n $(E2E_WORKERS) --dist loadfile
	@for m in $(OWN_GO_MODULES); do (cd toolchain/go/$$m && GOFLAGS=-mod=readonly go test ./... >/dev/null && echo "go test: $$m ok"); done

bench-setup: setup ## Build the bench-only tools (Helmfile, helm-diff) from their pinned modules
	@python3 toolchain/build_tools.py --for bench

bench: bench-setup ## Benchmarks against Helmfile, scale and parallelism (not part of `make test`; ~15 min)
	@$(PY) -m bench.run $(ARGS)

clean: cluster-down ## Remove local state (keeps the toolchain and caches)
	@rm -rf $(STATE)
