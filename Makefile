# genai-apm: `make run` for the embedded demo, `make test` for the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
JARS := .cache/jars/.resolved
POMS := infra/pom.xml $(wildcard infra/*/pom.xml)
UDF_SOURCES := $(shell find infra/udfs/src infra/codesplit-cache/src -type f 2>/dev/null)

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
	  || { echo "error: Python 3.11 is required (found $$($(PYTHON) --version 2>&1))" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "setup: installing genai-apm and its dependencies into $(VENV) (log: $(VENV)/install.log)"
	@# setuptools always prints an "Editable installation" notice for a package-dir mapping;
	@# the log keeps it (and everything else), shown only when the install fails
	@{ $(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q -e '.[dev]'; } \
	  > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log >&2; exit 1; }
	@touch $@

$(JARS): $(POMS) $(UDF_SOURCES)
	@command -v java >/dev/null || { echo "error: Java 17+ is required (no java on PATH)" >&2; exit 1; }
	@command -v mvn >/dev/null || { echo "error: Maven is required to resolve the JVM jars (no mvn on PATH)" >&2; exit 1; }
	rm -rf .cache/jars/*/  # a dependency dropped from a pom must leave the classpath too
	mvn -q -B -f infra/pom.xml package
	@touch $@

# The Kinesis -> Kafka bridge (Flink 1.19, infra/kinesis-bridge): its own Maven profile, so
# `make jars` and `make setup` do not download a second Flink; built for its tests and users.
BRIDGE_JAR := .cache/jars/kinesis-bridge/genai-apm-kinesis-bridge.jar
BRIDGE_SOURCES := $(shell find infra/kinesis-bridge/src -name '*.java' 2>/dev/null)
$(BRIDGE_JAR): infra/pom.xml infra/kinesis-bridge/pom.xml $(BRIDGE_SOURCES)
	@command -v mvn >/dev/null || { echo "error: Maven is required to build the Kinesis bridge (no mvn on PATH)" >&2; exit 1; }
	rm -rf .cache/jars/kinesis-bridge
	mvn -q -B -f infra/pom.xml -P kinesis-bridge -pl kinesis-bridge package

install: $(INSTALLED) ## create .venv and install genai-apm with its dev extras
jars: $(JARS) ## resolve Kafka and Flink connector jars with Maven into .cache/jars
setup: install jars ## everything `run` and `test` need
bridge: $(BRIDGE_JAR) ## the Kinesis -> Kafka bridge's jar and classpath (genai-apm bridge kinesis, docs/aws.md)

SOURCE ?= kafka
# SOURCE=kinesis: the events go into a Kinesis stream on moto and the bridge copies them in
run: setup $(if $(filter kinesis,$(SOURCE)),$(BRIDGE_JAR)) ## the embedded default: stack up, traffic, analytics job, tables, stack down (SOURCE=kinesis: in through Kinesis and the bridge)
	$(BIN)/genai-apm demo --source $(SOURCE)

up: setup ## start the local Kafka broker and moto server
	$(BIN)/genai-apm stack up

down: ## stop the local stack and the local Flink cluster
	@test ! -x $(BIN)/genai-apm || { $(BIN)/genai-apm cluster down; $(BIN)/genai-apm stack down; }

status: ## show what is running
	$(BIN)/genai-apm stack status
	$(BIN)/genai-apm cluster status

lint: install ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

browser: ## Debian's chromium, for the report's browser test (installed only when missing)
	@command -v chromium >/dev/null || { test "$$(id -u)" = 0 \
	  || { echo "error: chromium is missing; as root: apt-get install chromium" >&2; exit 1; }; \
	  apt-get install -y -q --no-install-recommends chromium \
	  || { apt-get update -q && apt-get install -y -q --no-install-recommends chromium; }; }

# Two pytest-xdist workers: a test mostly keeps one core busy (Flink planning is one thread),
# and each worker has its own gateway JVM (and, for integration, its own broker and moto).
# Unit tests: worksteal, so an idle worker takes tests queued behind a long plan on the other.
# Integration tests go a file at a time, longest first (tests/integration/conftest.py; xdist
# would otherwise order the files by their number of tests)
TEST_WORKERS ?= 2
test: setup bridge lint validate-infra browser ## unit tests, then integration tests on a real broker and Flink
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal -m "not integration" tests
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
	  -m "integration and not soak" tests

soak: setup ## the longer fault tests: savepoint upgrade, Kafka broker restart (marker soak)
	$(BIN)/pytest -m soak tests

FUZZ_EXAMPLES ?= 2000
fuzz: install ## the adapters' property tests, hostile input, many examples (FUZZ_EXAMPLES=2000 per test)
	HYPOTHESIS_PROFILE=fuzz HYPOTHESIS_MAX_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q \
	  tests/unit/test_adapters_hostile.py tests/unit/test_adapters_decode.py \
	  tests/unit/test_adapters_bedrock.py tests/unit/test_adapters_otlp.py

validate-infra: install ## generated infra/ up to date, CloudFormation templates pass cfn-lint
	$(BIN)/python -m genai_apm.deploy --check
	$(BIN)/cfn-lint infra/aws/*.yaml

MANAGED_FLINK_JAR := .cache/jars/managed-flink/genai-apm-managed-flink.jar
$(MANAGED_FLINK_JAR): infra/pom.xml infra/managed-flink/pom.xml $(UDF_SOURCES)
	@command -v mvn >/dev/null || { echo "error: Maven is required to build the package jar (no mvn on PATH)" >&2; exit 1; }
	mvn -q -B -f infra/pom.xml -P managed-flink -pl managed-flink package

package: install $(MANAGED_FLINK_JAR) ## dist/genai-apm-managed-flink.zip for Managed Flink FLINK-2_2 (docs/aws.md)
	$(BIN)/python -m genai_apm.deploy.managed_flink

BRIDGE_PACKAGE := .cache/jars/kinesis-bridge-managed-flink/genai-apm-kinesis-bridge.jar
$(BRIDGE_PACKAGE): infra/pom.xml infra/kinesis-bridge/pom.xml $(BRIDGE_SOURCES)
	@command -v mvn >/dev/null || { echo "error: Maven is required to build the bridge jar (no mvn on PATH)" >&2; exit 1; }
	mvn -q -B -f infra/pom.xml -P kinesis-bridge,bridge-managed-flink -pl kinesis-bridge package

package-bridge: $(BRIDGE_PACKAGE) ## dist/genai-apm-kinesis-bridge.jar for Managed Flink FLINK-1_19 (infra/aws/kinesis-bridge.yaml)
	mkdir -p dist && cp $(BRIDGE_PACKAGE) dist/genai-apm-kinesis-bridge.jar
	@echo "wrote dist/genai-apm-kinesis-bridge.jar: upload it to the ArtifactBucket of infra/aws/kinesis-bridge.yaml"

test-unit: install browser ## unit tests only (no servers)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal -m "not integration" tests

EVENTS ?= 200000
BENCH_ARGS ?=
$(VENV)/.bench-installed: $(INSTALLED) pyproject.toml
	$(BIN)/pip install -q -e '.[bench]'
	@touch $@

bench: setup $(VENV)/.bench-installed ## pipeline vs ceilings, polars and Spark; freshness, scaling; rewrites README (EVENTS=200000)
	$(BIN)/python bench/run.py --events $(EVENTS) $(BENCH_ARGS)

JOB ?= analytics
profile: setup ## where a job's time goes: JFR samples per task thread and hottest frames (JOB=analytics PROFILE_EVENTS=200000)
	$(BIN)/python bench/flight.py --job $(JOB) --events $(or $(PROFILE_EVENTS),200000) $(PROFILE_ARGS)

clean: down ## remove the venv, jar cache and local state
	rm -rf $(VENV) .cache .state

.PHONY: help install jars bridge setup run up down status lint format browser test test-unit soak fuzz validate-infra package package-bridge bench profile clean
