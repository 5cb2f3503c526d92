# The project's commands. Each target sets itself up: a .venv with the project installed.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 3000
export SAM_CLI_TELEMETRY := 0
export NO_MKDOCS_2_WARNING := 1

# (docs: docs docs-build docs-gen, below)
.PHONY: check run demo demo-orders key test unit integration e2e chaos timing-prone test-under-load lint template bench bench-smoke deploy clean programs \
	first-key db-provision lock-layers destroy \
	vendor browser browser-deps screenshot localstack

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[dev]"
	@touch $@

# LocalStack (SQS and Secrets Manager for the local stack, the tests and the bench), in a venv of
# its own (.tools/localstack): its pins must not touch the project's. The stack and the test
# fixtures start it themselves (local/localstack.py); LOCALSTACK_ENDPOINT points them at one
# already running instead.
LOCALSTACK := .tools/localstack/.installed

$(LOCALSTACK): scripts/install-localstack.sh
	bash scripts/install-localstack.sh
	@touch $@

## localstack: install LocalStack's Python core into .tools/localstack (the targets that need it do)
localstack: $(LOCALSTACK)

# Swagger UI's files for /docs, from npm's swagger-ui-dist (pinned in vendor/package-lock.json),
# copied into the common layer's source (git-ignored) so `sam build` ships them. --ignore-scripts:
# a dependency's postinstall only reports analytics.
SWAGGER_UI := layers/common/engine/static/swagger-ui
SWAGGER_FILES := swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css \
	favicon-32x32.png LICENSE NOTICE
VENDORED := $(SWAGGER_UI)/.installed

$(VENDORED): vendor/package.json vendor/package-lock.json
	npm ci --prefix vendor --ignore-scripts --no-audit --no-fund --loglevel=error
	rm -rf $(SWAGGER_UI) && mkdir -p $(SWAGGER_UI)
	cp $(addprefix vendor/node_modules/swagger-ui-dist/,$(SWAGGER_FILES)) $(SWAGGER_UI)/
	sed -i '/^\/\*# sourceMappingURL=/d' $(SWAGGER_UI)/swagger-ui.css  # the map does not ship
	@touch $@

## vendor: Swagger UI's files for /docs (npm's swagger-ui-dist), into the common layer
vendor: $(VENDORED)

# The browser test's needs: Debian's chromium (installed when missing and we are root) and
# playwright-core from tests/browser/package-lock.json. Where chromium cannot be had, this fails:
# the browser test is part of `make test`, and a skipped test would let a run stay green.
BROWSER_STAMP := tests/browser/node_modules/.installed

browser-deps: $(BROWSER_STAMP)
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) \
	      || { echo "could not install chromium (the browser test needs it)" >&2; exit 1; }; \
	  else echo "no /usr/bin/chromium and not root: install Debian's chromium" >&2; exit 1; fi; }

$(BROWSER_STAMP): tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
	@touch $@

# newman for the Postman collection's test (tests/postman), from tests/postman/package-lock.json.
POSTMAN_STAMP := tests/postman/node_modules/.installed

$(POSTMAN_STAMP): tests/postman/package.json tests/postman/package-lock.json
	npm ci --prefix tests/postman --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

## postman-deps: newman (pinned in tests/postman/package-lock.json) for the collection's test
.PHONY: postman-deps
postman-deps: $(POSTMAN_STAMP)

## browser: the console's browser test (headless Chromium against a local stack)
browser: $(STAMP) $(VENDORED) $(LOCALSTACK) browser-deps
	$(BIN)/python -m pytest -q -s tests/browser

## screenshot: the browser test, saving the page to docs/console.png (the README's picture)
screenshot: $(STAMP) $(VENDORED) $(LOCALSTACK) browser-deps
	CONSOLE_SCREENSHOT=docs/console.png $(BIN)/python -m pytest -q tests/browser

## programs: dump the DEX programs the local chain runs (Raydium CPMM, Meteora DAMM v2) from
## PROGRAM_DUMP_RPC_URL (getAccountInfo of each ProgramData, as `solana program dump`) into
## .cache/programs/; PIN=1 records the dumps' ELF hashes in local/chain/programs.lock. Not needed
## when LOCAL_PROGRAMS_DIR or ../shared/programs/ holds them
programs: $(STAMP)
	$(BIN)/python -m local.chain.binaries dump $(if $(PIN),--pin)

## run: start the local stack (gateway, LocalStack's SQS and Secrets Manager, pollers, Postgres,
## local chain) on 127.0.0.1:$(PORT)
run: $(STAMP) $(VENDORED) $(LOCALSTACK)
	PORT=$(PORT) LOCAL_LAMBDA_WORKERS=$${LOCAL_LAMBDA_WORKERS:-1} $(BIN)/python -m local.stack

## sam-env: env.json for `sam local` (invoke -n env.json, start-api, start-lambda) that points
## every function at the running `make run` (its Postgres, LocalStack, chain; docs/local.md).
## SAM_HOST=host.docker.internal where the containers do not share the host's network
SAM_HOST ?=
.PHONY: sam-env
sam-env: $(STAMP)
	$(BIN)/python -m local.sam_env $(if $(SAM_HOST),--host $(SAM_HOST))

## demo: submit an order to the running stack and print its live status stream
demo: $(STAMP)
	$(BIN)/python -m local.demo --url http://127.0.0.1:$(PORT)

## demo-orders: limit and sniper orders end to end: quote, a limit order waiting, a market order
## that moves the price, the limit filled; a sniper order firing on a new token's pool. Starts its
## own stack (its own database and ports); URL=http://127.0.0.1:3000 uses a running `make run`
demo-orders: $(STAMP)
	$(BIN)/python -m local.demo_orders $(if $(URL),--url $(URL))

## key: create an API key in the local stack's database:
## make key NAME=alice [MAX_IN_FLIGHT=20] [MAX_OPEN_ORDERS=100] [LIMITS="SOL=100/1000 ..."]
## [MAX_SLIPPAGE=50] [LIMIT_PRICE_GUARD=20]
## (list / limits ID / revoke ID: .venv/bin/python -m local.keys ...; cloud: python -m engine.keys)
MAX_IN_FLIGHT ?= 20
MAX_OPEN_ORDERS ?= 100
key: $(STAMP)
	@test -n "$(NAME)" || { echo "usage: make key NAME=<who> [MAX_IN_FLIGHT=20]" \
	  "[LIMITS='SOL=100/1000 USDC=20000/200000'] [MAX_SLIPPAGE=50] [LIMIT_PRICE_GUARD=20]" >&2; exit 2; }
	@$(BIN)/python -m local.keys create --name "$(NAME)" --max-in-flight $(MAX_IN_FLIGHT) \
	  --max-open-orders $(MAX_OPEN_ORDERS) $(foreach l,$(LIMITS),--limit $(l)) \
	  $(if $(MAX_SLIPPAGE),--max-slippage $(MAX_SLIPPAGE)) \
	  $(if $(LIMIT_PRICE_GUARD),--limit-price-guard $(LIMIT_PRICE_GUARD))

## tests/js/node_modules: the JS client suite's packages (@solana/web3.js 1.x, @solana/spl-token),
## exactly as tests/js/package-lock.json pins them
tests/js/node_modules: tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund
	@touch $@

## tests/kit/node_modules: the kit suite's packages (@solana/kit 8.x, @solana-program/system and
## token), exactly as tests/kit/package-lock.json pins them
tests/kit/node_modules: tests/kit/package-lock.json
	npm ci --prefix tests/kit --no-audit --no-fund
	@touch $@

## tests/kit23/node_modules: @solana/kit 2.3 alone (the kit 2.x check), as
## tests/kit23/package-lock.json pins it
tests/kit23/node_modules: tests/kit23/package-lock.json
	npm ci --prefix tests/kit23 --no-audit --no-fund
	@touch $@

# Test workers (pytest-xdist): one per core. Each worker has its own database, LocalStack and
# stacks; measured on 2 cores: 190 s with two workers, 320 s in one process. PYTEST_WORKERS=
# (empty) runs in one process.
PYTEST_WORKERS ?= -n auto

## docs: serve the docs site (mkdocs-material, offline) on http://127.0.0.1:8000
## docs-build: build it strictly into site/ (make test runs it); docs-gen: regenerate the
## configuration, error and metric tables and docs/openapi.json from the code; docs-plots: draw
## docs/performance.md's plots (docs/img/perf-*.svg) from the bench figures in docs/perf/runs.json
.PHONY: docs docs-build docs-gen docs-plots
DOCS_PORT ?= 8000
docs: $(STAMP)
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)

docs-build: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet

docs-gen: $(STAMP)
	$(BIN)/python -m ops.docs_gen

docs-plots: $(STAMP)
	$(BIN)/python -m bench.plots

## test: lint, type-check and run every test (real Postgres, LocalStack, moto's management API, the
## local chain, real sockets, the JS clients, the console in headless Chromium)
test: $(STAMP) $(VENDORED) $(LOCALSTACK) tests/js/node_modules tests/kit/node_modules tests/kit23/node_modules browser-deps \
	docs-build $(POSTMAN_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers local functions bench tests ops
	$(BIN)/vulture
	$(BIN)/python -m pytest -q $(PYTEST_WORKERS)

## check: the quick loop for day-to-day work (under 90 s): lint, types, unit tests, and the
## integration tests that start no emulator (real Postgres and the local chain, in-process;
## no LocalStack, no moto server)
check: $(STAMP) $(VENDORED) tests/js/node_modules tests/kit/node_modules tests/kit23/node_modules
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers local functions bench tests ops
	$(BIN)/vulture
	$(BIN)/python -m pytest -q -m "not emulator and not e2e and not chaos" tests/unit tests/integration

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

integration: $(STAMP) $(VENDORED) $(LOCALSTACK) tests/js/node_modules tests/kit/node_modules tests/kit23/node_modules
	$(BIN)/python -m pytest -q tests/integration

e2e: $(STAMP) $(VENDORED) $(LOCALSTACK) $(POSTMAN_STAMP)
	$(BIN)/python -m pytest -q tests/e2e tests/postman

## test-under-load: `make test` RUNS times (default 5) with a busy loop on every core; prints each
## run's result (scripts/under-load.sh). How the suite is held to "never flakes"
RUNS ?= 5
test-under-load:
	RUNS=$(RUNS) bash scripts/under-load.sh $(MAKE) --no-print-directory test

## timing-prone: the suites that run against a whole stack with real sockets and clocks (e2e,
## chaos, browser), in one run; CI runs them a second time after `make test` and fails on a
## failure in either run (a test that fails only sometimes is a defect, never a re-run)
timing-prone: $(STAMP) $(VENDORED) $(LOCALSTACK) browser-deps
	$(BIN)/python -m pytest -q $(PYTEST_WORKERS) tests/e2e tests/chaos tests/browser

## chaos: faults at scale (also part of make test): a faulty RPC under 500 orders, killed executors
chaos: $(STAMP) $(LOCALSTACK)
	$(BIN)/python -m pytest -q -s -m chaos tests/chaos

## lint: ruff, mypy strict and vulture (unused code; its allow-list: vulture_allowlist.py)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers local functions bench tests ops
	$(BIN)/vulture

## template: cfn-lint, checkov, sam validate --lint and sam build, offline (tools in .tools/)
template: $(VENDORED)
	bash scripts/install-sam-tools.sh
	.tools/sam/bin/cfn-lint template.yaml
	.tools/checkov/bin/checkov -f template.yaml --framework cloudformation --quiet --compact --skip-download
	.tools/sam/bin/sam validate --lint --region us-east-1
	.tools/sam/bin/sam build --cached

## bench: reproducible performance figures (see bench/README.md). SQS and Secrets Manager on
## LocalStack; `make bench SQS=moto` on moto's server, for comparison; BENCH_ARGS for the rest,
## e.g. make bench BENCH_ARGS="--orders 300 --concurrency 10 --skip quoting,coldstart"
SQS ?= localstack
BENCH_ARGS ?=
bench: $(STAMP) $(LOCALSTACK)
	$(BIN)/python -m bench --sqs $(SQS) $(BENCH_ARGS)

## bench-smoke: 40 orders end to end (CI runs it); fails when an order is lost or duplicated
bench-smoke: $(STAMP) $(LOCALSTACK)
	$(BIN)/python -m bench --smoke --sqs $(SQS)

## deploy-check: what deploy needs on this machine (python3.11, npm, the aws CLI and its
## credentials), then the account's Lambda concurrency against the stack's parameters
## (samconfig.toml's; PARAMS="Name=Value ..." to try others): stops with the numbers when it
## would not fit
.PHONY: deploy-check wallet devnet-pools
PARAMS ?=
deploy-check: $(STAMP)
	@missing=""; for tool in python3.11 npm aws; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	  test -z "$$missing" || { echo "deploy needs:$$missing (see docs/deploying.md: Before you deploy)" >&2; exit 2; }
	@aws sts get-caller-identity --query Account --output text >/dev/null \
	  || { echo "the aws CLI has no working credentials (aws configure, or AWS_PROFILE)" >&2; exit 2; }
	$(BIN)/python -m ops.quota $(PARAMS)

## deploy: check, build and deploy to AWS with your credentials. The first time it asks for the
## parameters (sam deploy --guided) and saves them in samconfig.toml; afterwards it deploys with
## samconfig.toml as it is (change a parameter there). The deploy migrates the database and makes
## the first API key.
deploy: deploy-check template
	@if [ -f samconfig.toml ]; then .tools/sam/bin/sam deploy; \
	else .tools/sam/bin/sam deploy --guided; fi

# The deployed stack's name (sam deploy --guided saves it in samconfig.toml) and an output of it.
STACK ?= $(shell sed -n 's/^stack_name = "\(.*\)"/\1/p' samconfig.toml 2>/dev/null | head -1)
stack-output = $(shell aws cloudformation describe-stacks --stack-name "$(STACK)" \
	--query "Stacks[0].Outputs[?OutputKey=='$(1)'].OutputValue" --output text)

## first-key: print the first API key the deploy made (from its secret; aws CLI, your credentials)
first-key:
	@test -n "$(STACK)" || { echo "no stack: run make deploy, or pass STACK=<name>" >&2; exit 2; }
	@aws secretsmanager get-secret-value --secret-id "$(call stack-output,FirstApiKeySecretArn)" \
	  --query SecretString --output text

## wallet: the signing wallet's public key (stores a new key in the empty wallet secret first;
## KEYFILE=~/.config/solana/id.json stores that keypair instead). Never prints the key itself.
wallet: $(STAMP)
	@test -n "$(STACK)" || { echo "no stack: run make deploy, or pass STACK=<name>" >&2; exit 2; }
	@$(BIN)/python -m ops.wallet --secret-id "$(call stack-output,WalletSecretArn)" \
	  $(if $(KEYFILE),--import-key "$(KEYFILE)")

## devnet-pools: a new token and a SOL/token pool on Raydium CPMM and Meteora DAMM v2 on devnet,
## paid by KEYFILE (funded); prints the VenuePools value to deploy with. PROFILE=local: the same
## against a running `make run` chain (its seeded wallet). SOL=0.5 per pool, PRICE=100 per SOL.
PROFILE ?= devnet
SOL ?= 0.5
PRICE ?= 100
devnet-pools: $(STAMP)
	$(BIN)/python -m ops.devnet_pools --profile $(PROFILE) --sol $(SOL) --price $(PRICE) \
	  $(if $(KEYFILE),--keypair "$(KEYFILE)")

## db-provision: run the deploy's database step again (migrations, role logins, first key)
db-provision:
	@test -n "$(STACK)" || { echo "no stack: run make deploy, or pass STACK=<name>" >&2; exit 2; }
	aws lambda invoke --function-name "$(call stack-output,MigrateFunctionName)" \
	  --cli-binary-format raw-in-base64-out --payload '{}' /dev/stdout

## lock-layers: pin both layers' packages to one version each (layers/constraints.txt)
lock-layers: $(STAMP)
	bash scripts/lock-layers.sh

## destroy: delete the stack (the database leaves a final snapshot; the wallet secret is kept)
destroy:
	@test -n "$(STACK)" || { echo "no stack: pass STACK=<name>" >&2; exit 2; }
	.tools/sam/bin/sam delete --stack-name "$(STACK)"

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
