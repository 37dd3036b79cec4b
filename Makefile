# Everything an operator or CI runs. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export PATH := $(CURDIR)/.venv/bin:$(PATH)
export CONTAINERS_CONF := $(CURDIR)/lab/containers.conf
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

VERSION ?= 1.0.0
DEMO_VERSIONS := 1.0.0 1.1.0
# The lab: 5 blue + 5 green app hosts, 1 LB published on 127.0.0.1:$(LAB_PORT) (the next LBs on the next ports) and
# mon1, the monitoring host (Prometheus).
LAB_BLUE ?= 5
LAB_GREEN ?= 5
LAB_LB ?= 1
LAB_PORT ?= 8080
# Hosts per colour of each bench-scale size (50 per colour: 100 app hosts + 2 LBs; SCALE_HOSTS=100 for 200).
SCALE_HOSTS ?= 5 20 50
BUILD_DIR ?= build
ARTIFACT := $(BUILD_DIR)/user-api-$(VERSION)-linux-amd64
# user-api is built in GOPATH mode (GO111MODULE=off) against Debian's Go libraries under /usr/share/gocode/src, the
# -dev packages of app/user-api/debian-packages.lock, as Debian builds its own Go packages. Module mode with replace
# directives into /usr/share/gocode/src does not work offline with Go 1.19: every replacement needs a go.mod, and
# Debian ships none for github.com/matttproud/golang_protobuf_extensions, and the module graph reads go.mod files of
# modules Debian does not install (google.golang.org/protobuf's go 1.11 go.mod requires github.com/google/go-cmp).
# GOPATH mode compiles exactly the packages imported and downloads nothing; so app/user-api has no go.mod.
GO_SOURCES := $(wildcard app/user-api/*.go) app/user-api/debian-packages.lock
GO_ENV := GO111MODULE=off GOPATH=/usr/share/gocode

.PHONY: help setup lock build artifacts lab-up lab-down demo test lint sanity ee unit molecule bench-rolling bench-bluegreen bench-canary bench-scale clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: ## install Debian packages and the .venv (idempotent; run as root on Debian 12)
	@tools/setup.sh

# The lock of every Python package with its hashes; the controller's lock takes the test lock's versions.
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
  --no-emit-find-links --no-emit-index-url
lock: setup ## regenerate requirements.lock and requirements-test.lock from requirements*.txt (pip-compile)
	$(PIP_COMPILE) --output-file requirements-test.lock requirements-test.txt
	$(PIP_COMPILE) --constraint requirements-test.lock --output-file requirements.lock requirements.txt

build: setup $(ARTIFACT) ## build user-api VERSION (default 1.0.0) into build/ with its .sha256

# Reproducible: the same sources and app/user-api/debian-packages.lock's packages give the same bytes (no paths, no
# VCS stamp; a test builds again and compares). A throwaway GOPATH entry links app/user-api as the package user-api,
# so -trimpath records user-api/main.go; built as a directory outside every GOPATH the package would be named
# _/<path of the checkout>, and the bytes would depend on where the repository is.
$(BUILD_DIR)/user-api-%-linux-amd64: $(GO_SOURCES)
	@mkdir -p $(BUILD_DIR)
	gopath=$$(mktemp -d) && trap 'rm -rf "$$gopath"' EXIT && mkdir "$$gopath/src" && \
	  ln -s $(CURDIR)/app/user-api "$$gopath/src/user-api" && \
	  CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GO111MODULE=off GOPATH="$$gopath:/usr/share/gocode" \
	  go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=$*" -o $(abspath $@) user-api
	cd $(BUILD_DIR) && sha256sum $(notdir $@) > $(notdir $@).sha256

artifacts: setup $(foreach v,$(DEMO_VERSIONS),$(BUILD_DIR)/user-api-$(v)-linux-amd64) ## build 1.0.0 and 1.1.0

lab-up: setup ## start the lab fleet and mon1 (Prometheus) or reuse a running one, write inventories/lab/; LB i on 127.0.0.1:LAB_PORT+i-1
	python lab/lab.py up --reuse --name lab --blue $(LAB_BLUE) --green $(LAB_GREEN) --lb $(LAB_LB) \
	  --publish $(LAB_PORT) --inventory inventories/lab

lab-down: ## remove every container, network, key and file of the lab
	python3 lab/lab.py down --name lab

demo: artifacts lab-up ## the main job: deploy 1.0.0 onto the lab and show every live host through the LB
	ansible-playbook playbooks/site.yml -e app_version=1.0.0
	ansible-playbook playbooks/status.yml
	@echo "From this machine, through the LB on 127.0.0.1:$(LAB_PORT):"
	@for i in 1 2 3 4 5 6; do curl -s --max-time 5 http://127.0.0.1:$(LAB_PORT)/; done
	@echo "Next: playbooks/rolling.yml, bluegreen.yml, rollback.yml - see README.md and docs/"

lint: setup ## ansible-lint (production profile)
	ansible-lint --profile production

sanity: setup ## ansible-test sanity on the collection as built and installed (tarball in .cache/)
	tools/sanity.sh

unit: artifacts ## go test and the pytest suites (modules against real nginx, load generator)
	cd app/user-api && $(GO_ENV) go vet ./... && $(GO_ENV) go test ./...
	pytest -q

molecule: artifacts ## every Molecule scenario, each on its own fleet of containers
	molecule test --all

ee: setup ## the AWX execution environment's build context: ansible-builder create on execution-environment.yml
	rm -rf .cache/ee && mkdir -p .cache/ee/collection
	ansible-galaxy collection build --output-path .cache/ee/collection .
	ansible-builder create -f execution-environment.yml --context .cache/ee/context

test: lint sanity ee unit molecule ## everything CI runs

bench-rolling: artifacts ## rolling.yml vs the textbook rolling update under load, 5 and 20 hosts (own lab)
	python bench/rolling.py

bench-bluegreen: artifacts ## blue-green switch and rollback times under load, 5+5 hosts (own lab)
	python bench/bluegreen.py

bench-canary: artifacts ## a bad and a healthy canary under load, 5+5 hosts (own lab)
	python bench/canary.py

bench-scale: artifacts ## rolling 10%/25%, blue-green, canary at SCALE_HOSTS hosts per colour + 2 LBs, under load (own lab)
	python bench/scale.py $(SCALE_HOSTS)

clean: lab-down ## lab-down, and remove build/ and .venv
	rm -rf build .venv
