# The two commands of the README, and a few more for developers.
#   make run   install what is missing, build (Release), run `qlink demo`
#   make test  install what is missing, build (ASan+UBSan), run the test suite
SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD ?= build
TEST_BUILD ?= build-test
CMAKE_GEN := -G Ninja  # scripts/install-deps installs ninja-build before any configure

.PHONY: all deps build run test test-slow bench clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release -DQLINK_BUILD_TESTS=OFF

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target qlink qlinkd qkmd qlink-sim
	./$(BUILD)/terminal/app/qlink demo $(ARGS)

$(TEST_BUILD)/CMakeCache.txt:
	cmake -S . -B $(TEST_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DQLINK_ENABLE_ASAN=ON -DQLINK_WERROR=ON -DQLINK_BUILD_TESTS=ON -DQLINK_BUILD_BENCH=ON

test: deps $(TEST_BUILD)/CMakeCache.txt
	cmake --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS) -LE slow

test-slow: deps $(TEST_BUILD)/CMakeCache.txt
	cmake --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS) -L slow

bench: build
	@for b in $$(find $(BUILD)/bench -maxdepth 2 -type f -perm -u+x | sort); do echo "== $$b"; $$b; done

clean:
	rm -rf $(BUILD) $(TEST_BUILD)
