# hasession: the two commands a newcomer runs are `go run ./bench drill` and `make test`.

GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
export TESTCONTAINERS_RYUK_DISABLED := true

# The repository's modules, as go.work lists them: the product (the root), the adapters,
# the OpenTelemetry observer and its example, the test harness, the CLI and the
# container-backed tests. `./...` stops at a nested module's directory, also in a
# workspace, so the targets below run in each module, one module after the other (-p 1
# and one module at a time: the tests start containers). PRODUCT are those whose tests
# need no Docker.
PRODUCT := . adapters/scsstore adapters/gorillastore otel otel/example
MODULES := $(PRODUCT) cluster bench tests

# in_each runs a command ($2) in each of the modules ($1) in turn, goes on after a
# failure and fails at the end, naming the modules it failed in.
define in_each
	@failed=; for m in $(1); do \
		echo "== $$m: $(2)"; (cd $$m && $(2)) || failed="$$failed $$m"; \
	done; \
	if [ -n "$$failed" ]; then echo "failed in:$$failed"; exit 1; fi
endef

.PHONY: all image image-if-missing python-deps test vet tidy staticcheck unit fmt sweep

all: test

## image: build the Redis image offline (FROM scratch, Debian's redis-tools package)
image:
	bash docker/build-image.sh

image-if-missing:
	@bash docker/build-image.sh --if-missing

## python-deps: Debian's python3-redis and python3-msgpack for the Python reference module
## (python/): nothing when python3 imports them; otherwise apt-get, after waiting (bounded)
## for another apt or dpkg. Without root it says so and goes on: tests/python then skip,
## or fail when CI is set.
python-deps:
	@bash python/install-deps.sh || echo "python-deps: not installed; the Python tests (tests/python) skip, or fail when CI is set"

## test: the CI command — image if missing, the Python packages if missing, vet, staticcheck,
## every test of every module with -race
test: image-if-missing python-deps vet staticcheck
	$(call in_each,$(MODULES),$(GO) test -race -count=1 -p 1 -timeout 60m ./...)

vet: tidy
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(call in_each,$(MODULES),$(GO) vet ./...)

## tidy: each module's go.mod and go.sum are complete and tidy on their own (without go.work)
tidy:
	$(call in_each,$(MODULES),GOWORK=off $(GO) mod tidy -diff)

staticcheck:
	$(call in_each,$(MODULES),$(GO) run $(STATICCHECK) ./...)

## unit: the tests that need no Docker (the product's, the adapters' and the observer's)
unit:
	$(call in_each,$(PRODUCT),$(GO) test -race -count=1 ./...)

## sweep: remove every hasession container and network
sweep:
	$(GO) run ./bench sweep --all
