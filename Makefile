# The two commands of the README:
#   make run   install what is missing, build, serve on the embedded SQLite default (127.0.0.1:6632)
#   make test  install what is missing, build, run every test tier (unit, conformance, integration,
#              fuzz smoke)
# Others: make build, make test-slow, make fuzz, make bench, make format, make clean.

PRESET ?= release
BUILD_DIR := build/$(PRESET)
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60

.PHONY: all deps configure build run test test-fast test-slow fuzz fuzz-smoke bench format clean

all: build

deps:
	@./scripts/install-deps

$(BUILD_DIR)/build.ninja:
	@cmake --preset $(PRESET) >/dev/null

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/ordo serve $(ARGS)

# Every tier that `make test` runs; timing targets are benchmarks, never tests.
test: build fuzz-smoke
	@./scripts/run-tests $(BUILD_DIR)

test-fast: build
	@./scripts/run-tests $(BUILD_DIR)

test-slow: build
	@ORDO_SLOW_TESTS=1 ./scripts/run-tests $(BUILD_DIR)

build/fuzz/build.ninja:
	@cmake --preset fuzz >/dev/null

fuzz: deps build/fuzz/build.ninja
	@cmake --build build/fuzz -j $(JOBS)

fuzz-smoke: fuzz
	@./scripts/fuzz-smoke build/fuzz $(FUZZ_SECONDS)

bench: build
	@echo "see docs/benchmarks.md for the commands behind every figure"

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf build
