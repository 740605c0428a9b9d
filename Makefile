# hasession: the two commands a newcomer runs are `go run ./bench drill` and `make test`.

GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
export TESTCONTAINERS_RYUK_DISABLED := true

.PHONY: all image image-if-missing test vet staticcheck unit fmt sweep

all: test

## image: build the Redis image offline (FROM scratch, Debian's redis-tools package)
image:
	bash docker/build-image.sh

image-if-missing:
	@bash docker/build-image.sh --if-missing

## test: the CI command — image if missing, vet, staticcheck, every test with -race
test: image-if-missing vet staticcheck
	$(GO) test -race -count=1 -p 1 -timeout 60m ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

## unit: the tests that need no Docker
unit:
	$(GO) test -race -count=1 ./codec/ ./internal/...

## sweep: remove every hasession container and network
sweep:
	$(GO) run ./bench sweep --all
