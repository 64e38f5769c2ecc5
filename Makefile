# make test   installs what the tests need (Debian postgresql, staticcheck),
#             then runs gofmt, go vet, staticcheck and go test -race.
# make demo   runs the server with the example mesh.
# make bench  runs the benchmarks in bench/ (see BENCHMARKS.md).
.PHONY: test demo bench build lint
test:
	./scripts/test.sh
demo:
	go run ./cmd/rhizome up --demo
build:
	go build -o rhizome ./cmd/rhizome
bench:
	./scripts/bench.sh
