# unifork — the one build system. Each component adds its files through its
# own module.mk; this file holds the flags, the pattern rules and the
# top-level targets.  Builds go to $(BUILD); `make SAN=1 ...` builds the host
# side with AddressSanitizer + UndefinedBehaviorSanitizer into build/san.

SAN        ?=
ifeq ($(SAN),1)
BUILD      ?= build/san
else
BUILD      ?= build
endif
# The guest side (agent, kernel, initramfs) is never sanitized and always
# lives in the plain build directory.
GBUILD     := build

CC         ?= gcc
CFLAGS_WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
               -Wmissing-prototypes -Wno-unused-parameter
CFLAGS     ?= -O2 -g
CFLAGS     += -std=gnu11 $(CFLAGS_WARN) -D_GNU_SOURCE -I. -I$(BUILD)/gen -MMD -MP
LDLIBS     ?=
ifeq ($(SAN),1)
CFLAGS     += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS    += -fsanitize=address,undefined
endif
# Guest binaries: no sanitizers, plain flags.
GCFLAGS    := -O2 -g -std=gnu11 $(CFLAGS_WARN) -D_GNU_SOURCE -I. -I$(GBUILD)/gen -MMD -MP

NPROC      := $(shell nproc 2>/dev/null || echo 2)
UNIFORK_CACHE ?= $(HOME)/.cache/unifork
export UNIFORK_CACHE

# Filled in by the module.mk files.
HOST_BINS  :=
UNIT_TESTS :=
GUEST_BINS :=
GEN_HDRS   :=   # generated headers host objects wait for (order-only)
GGEN_HDRS  :=   # the same for guest objects
HOST_LIB_SRCS :=
HOST_LDLIBS :=

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
gobj = $(patsubst %.c,$(GBUILD)/gobj/%.o,$(1))

.PHONY: all host guest deps kernel initramfs test unit run bench clean fuzz soak
all: host guest

include proto/module.mk
include snapshotter/module.mk
include tools/sandbox/module.mk
include vmm/module.mk
include forker/module.mk
include guest-agent/module.mk
include guest/module.mk
include gateway/module.mk
include runtimed/module.mk
include cli/module.mk
include functions/module.mk
include tests/module.mk
include tests/sched/module.mk
include bench/module.mk
include tests/fuzz/module.mk

host: $(HOST_BINS) $(UNIT_TESTS)
guest: $(GUEST_BINS) initramfs kernel

$(BUILD)/obj/%.o: %.c | $(GEN_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(GBUILD)/gobj/%.o: %.c | $(GGEN_HDRS)
	@mkdir -p $(@D)
	$(CC) $(GCFLAGS) -c -o $@ $<

deps:
	@tools/deps.sh

# `make test` and `make run` are all a fresh machine needs: they install the
# dependencies, build everything and then run.
test:
	@tools/deps.sh
	$(MAKE) -j$(NPROC) all
	$(MAKE) -j$(NPROC) SAN=1 host
	tests/run

unit:
	$(MAKE) -j$(NPROC) host
	tests/run --unit-only

run:
	@tools/deps.sh
	$(MAKE) -j$(NPROC) all
	tools/run-example

bench:
	@tools/deps.sh
	$(MAKE) -j$(NPROC) all
	bench/run

# The soak and fault-injection test, ~10 minutes of load (tests/soak/);
# `make test` runs a shorter one.  UNIFORK_SOAK_SECONDS / _SEED override.
soak:
	@tools/deps.sh
	$(MAKE) -j$(NPROC) all
	UNIFORK_SOAK_SECONDS=$${UNIFORK_SOAK_SECONDS:-600} tools/kvm-run --timeout 2700 -- tests/soak/run.sh

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
