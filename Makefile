# Engram: build, test, demo, bench, lint.
# Engram needs Go 1.27: GOTOOLCHAIN makes an older go command fetch it through the module proxy.
# GOEXPERIMENT=simd turns on the Go backend's AVX-512/AVX2 kernels (about 10x faster).
export GOTOOLCHAIN := go1.27.3
export GOEXPERIMENT := simd

.PHONY: build test demo bench lint fuzz

build:
	go build ./...

test:
	go test ./...

demo:
	go run ./cmd/train -config configs/quickstart.yaml

# Benchmarks: tokens/s per mixer (forward, forward+backward), scaling with sequence length, data reading.
bench:
	go test -run '^$$' -bench . -benchtime 1x -timeout 60m ./...

lint:
	go vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fuzz:
	go test -run '^$$' -fuzz FuzzReadArrow -fuzztime 60s ./data/
	go test -run '^$$' -fuzz FuzzReadParquet -fuzztime 60s ./data/
	go test -run '^$$' -fuzz FuzzParseConfig -fuzztime 60s ./configs/
