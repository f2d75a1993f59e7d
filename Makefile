# Engram: build, test, demo, bench, lint.
# Engram needs Go 1.27: GOTOOLCHAIN makes an older go command fetch it through the module proxy.
# GOEXPERIMENT=simd turns on the Go backend's AVX-512/AVX2 kernels (about 10x faster).
export GOTOOLCHAIN := go1.27.3
export GOEXPERIMENT := simd

.PHONY: build test demo bench bench-pytorch lint fuzz

build:
	go build ./...

test:
	go test ./...

demo:
	go run ./cmd/train -config configs/quickstart.yaml

# Benchmarks: tokens/s forward and forward+backward of every layer the speed targets name, at B=8, H=4,
# T in {256, 1024}, d in {32, 64} (B=8, H=4, d_head 32 for Titans), the scaling of time with T, the CPU
# profile categories of the gated delta rule op (transpose / copy / elementwise / matmul / reduce), and
# quickstart training steps. Results also go to bench.txt. BENCH_TIME=1x for a quick look.
BENCH_TIME ?= 3x
bench:
	@{ go test -run '^$$' -bench 'BenchmarkOp/chunk|BenchmarkOpProfile|BenchmarkLayer/chunk|BenchmarkScaling' -benchtime $(BENCH_TIME) -timeout 60m ./deltanet && \
	   go test -run '^$$' -bench 'BenchmarkAttention' -benchtime $(BENCH_TIME) -timeout 60m ./layers && \
	   go test -run '^$$' -bench 'BenchmarkLMM|BenchmarkMiras' -benchtime $(BENCH_TIME) -timeout 60m ./titans && \
	   go test -run '^$$' -bench 'BenchmarkMoM' -benchtime $(BENCH_TIME) -timeout 60m ./mom && \
	   go test -run '^$$' -bench 'BenchmarkMamba2' -benchtime $(BENCH_TIME) -timeout 60m ./mamba2 && \
	   go test -run '^$$' -bench 'BenchmarkGLA' -benchtime $(BENCH_TIME) -timeout 60m ./gla && \
	   go test -run '^$$' -bench . -benchtime $(BENCH_TIME) -timeout 60m ./train ./data; } 2>&1 | tee bench.txt

# The PyTorch CPU reference rows of the speed table (issue 14), to run in the same sitting as bench:
# optional, needs Debian's python3-torch and libopenblas0-pthread (apt-get install); see the script.
bench-pytorch:
	OPENBLAS_NUM_THREADS=2 MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 \
		/usr/bin/python3 docs/bench/pytorch_reference.py 2>&1 | tee bench_pytorch.txt

lint:
	go vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fuzz:
	go test -run '^$$' -fuzz FuzzReadArrow -fuzztime 60s ./data/
	go test -run '^$$' -fuzz FuzzReadParquet -fuzztime 60s ./data/
	go test -run '^$$' -fuzz FuzzParseConfig -fuzztime 60s ./configs/
