# OpenDojo's entry points. `make demo` runs the main job, `make test` the whole test suite; both install what
# they need first (scripts/setup.sh, a no-op when everything is present) and build in ./build.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)

.PHONY: all setup configure build demo test bench bench-train clean

all: build

setup:
	@scripts/setup.sh

$(BUILD_DIR)/build.ninja: | setup
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release

configure: $(BUILD_DIR)/build.ninja

build: setup configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	@scripts/demo.sh $(BUILD_DIR)/apps/dojo/dojo

# The fuzzers run first (30 s for the ONNX importer, 10 s for each other target: scripts/fuzz.sh), so that CTest's summary is the last thing printed.
test: build
	scripts/fuzz.sh 30
	cd $(BUILD_DIR) && ctest -j $(JOBS) --output-on-failure

# Throughput of the bulk conversions, every path side by side, with ratios (docs/numerics.md has the figures).
bench: build
	bench/numerics_ratios.py $(BUILD_DIR)/bench/numerics_convert_bench --benchmark_min_time=0.5

# Training throughput against PyTorch 1.13 (same models, batch, threads), with ratios (docs/training.md).
bench-train: build
	bench/train_vs_pytorch.py $(BUILD_DIR)/apps/dojo/dojo --threads $(JOBS)

clean:
	rm -rf $(BUILD_DIR)
