# Thin wrapper around CMake and the test scripts. See README.md.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan

.PHONY: all deps build asan tsan run test unit unit-tsan e2e conformance fuzz bench fmt lint clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja $(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: $(BUILD)/Makefile
	@cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/Makefile:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DAOS_SANITIZE=ON >/dev/null

asan: $(ASAN_BUILD)/Makefile
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

$(TSAN_BUILD)/Makefile:
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DAOS_TSAN=ON >/dev/null

tsan: $(TSAN_BUILD)/Makefile
	@cmake --build $(TSAN_BUILD) -j $(JOBS)

run:
	@scripts/install-deps --runtime
	@$(MAKE) --no-print-directory build
	@scripts/run

# Lint, unit tests under ASan+UBSan and under TSan, end-to-end tests,
# conformance, fuzzing.
test: deps build asan tsan
	@scripts/test-all

unit: asan
	cd $(ASAN_BUILD) && ctest --output-on-failure

unit-tsan: tsan
	cd $(TSAN_BUILD) && ctest --output-on-failure

e2e: build
	@scripts/test-e2e

conformance: build
	@scripts/conformance

# libFuzzer harnesses (clang): FUZZ_SECONDS each, default 10.
fuzz: deps
	@scripts/fuzz

bench: build
	@scripts/install-deps --bench
	@bench/gateway/run.sh

fmt:
	clang-format -i $$(git ls-files 'src/*.[ch]' 'tests/unit/*.[ch]' 'tests/fuzz/*.[ch]' 'bench/*.[ch]')

# clang-format, error codes only from src/err, no banned function, clang-tidy.
lint: build
	@BUILD=$(BUILD) LINT_JOBS=$(JOBS) scripts/lint

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) build-fuzz fuzz-crashes
