# Tact's everyday targets. Each is a few lines; CI (.ci/run) calls them.
BUF := go tool -modfile=tools/go.mod buf

.PHONY: all generate checkgenerate lint test race bench run ci image deploytest

all: generate lint test

## generate: regenerate Go, gateway and OpenAPI code from proto/ (pinned local plugins).
generate:
	cd proto && $(BUF) generate

## checkgenerate: fail when committed generated code is stale.
checkgenerate: generate
	@test -z "$$(git status --porcelain -- proto)" || { \
		echo "generated code is stale: run 'make generate' and commit" >&2; \
		git status --porcelain -- proto >&2; git diff --stat -- proto >&2; exit 1; }

## lint: buf lint and format check, gofmt, go vet.
lint:
	cd proto && $(BUF) lint && $(BUF) format --diff --exit-code
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:" >&2; gofmt -l $$(git ls-files '*.go') >&2; exit 1; }
	go vet ./...

## test: the README's test command.
test:
	go test ./...

## race: the tests with the race detector.
race:
	go test -race ./...

## bench: the Go benchmarks of the hot paths.
bench:
	go test -run '^$$' -bench . -benchmem ./...

## run: the server on its embedded demo.
run:
	go run ./cmd/tactd

## image: tactd's container image as an OCI archive, build/tact-image.tar (no container runtime needed).
image:
	mkdir -p build
	CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o build/tactd ./cmd/tactd
	cd deploy && go run ./cmd/mkimage --binary ../build/tactd --out ../build/tact-image.tar --version "$$(git describe --always --dirty)"

## deploytest: the deploy module's tests (the image, the Kustomize manifests), a module of its own.
deploytest:
	cd deploy && go vet ./... && go test ./...

ci:
	bash .ci/run
