# tests/fuzz/ — libFuzzer targets, built with clang into $(BUILD)/fuzz/.
# The library code they exercise is compiled again for fuzzing (coverage
# instrumentation + ASan + UBSan) into $(BUILD)/fuzzobj/, apart from the
# normal objects.
#
#   make fuzz-build                 build every target
#   make fuzz FUZZ_SECONDS=60       build, then run each for FUZZ_SECONDS
#                                   (corpus in $(BUILD)/fuzz/<name>-corpus,
#                                   seeded from tests/fuzz/<seeds>/)
#   make fuzz-vsock-seeds           rewrite tests/fuzz/vsock/ from fuzz_vsock.c
#
# Targets: fuzz_vsock (vmm/ virtio-mmio + virtqueues + vsock, no KVM),
# fuzz_agent_proto (proto/ framing and envelope decoding) and fuzz_http
# (gateway/ HTTP request path, seeds in tests/fuzz/http/).

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# Warnings on, but not fatal: clang warns about GNU extensions gcc accepts
# silently (e.g. kvm_msrs headers inside structs in vmm/cpu.c); the gcc
# build with -Werror is the project's gate.
FUZZ_CFLAGS  := -O1 -g -std=gnu11 $(filter-out -Werror,$(CFLAGS_WARN)) -D_GNU_SOURCE -I. -I$(BUILD)/gen -MMD -MP \
                -fsanitize=fuzzer-no-link $(FUZZ_SAN)
FUZZ_LDFLAGS := -fsanitize=fuzzer $(FUZZ_SAN)

fuzzobj = $(patsubst %.c,$(BUILD)/fuzzobj/%.o,$(1))

$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

FUZZ_TARGETS :=

FUZZ_TARGETS += $(BUILD)/fuzz/fuzz_vsock
$(BUILD)/fuzz/fuzz_vsock: $(call fuzzobj,tests/fuzz/fuzz_vsock.c $(VMM_SRCS))
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $^ $(HOST_LDLIBS)

ifneq ($(wildcard tests/fuzz/fuzz_agent_proto.c),)
FUZZ_TARGETS += $(BUILD)/fuzz/fuzz_agent_proto
FUZZ_AGENT_OBJS := $(call fuzzobj,tests/fuzz/fuzz_agent_proto.c proto/frame.c proto/agent_msg.c \
                   $(BUILD)/gen/proto/agent.pb-c.c)
$(FUZZ_AGENT_OBJS): $(BUILD)/gen/proto/agent.pb-c.h
$(BUILD)/fuzz/fuzz_agent_proto: $(FUZZ_AGENT_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $^ -lprotobuf-c
endif

# fuzz_http: the gateway's session layer (parsing, routing, limits, specs,
# completions) with llhttp; no sockets, no libuv loop (uv_hrtime only).
FUZZ_TARGETS += $(BUILD)/fuzz/fuzz_http
FUZZ_HTTP_SRCS := tests/fuzz/fuzz_http.c gateway/buf.c gateway/parser.c gateway/router.c \
                  gateway/response.c gateway/api.c gateway/auth.c gateway/spec.c gateway/base64.c \
                  gateway/metrics.c gateway/call.c gateway/core.c gateway/session.c
$(call fuzzobj,$(FUZZ_HTTP_SRCS)): | $(LLHTTP_HDR)
$(call fuzzobj,$(LLHTTP_SRCS)): FUZZ_CFLAGS += -Wno-missing-prototypes
$(BUILD)/fuzz/fuzz_http: $(call fuzzobj,$(FUZZ_HTTP_SRCS) $(LLHTTP_SRCS))
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $^ -luv -ljansson -lpthread

# Seed programs for fuzz_vsock are written by the target's own source.
.PHONY: fuzz-build fuzz-vsock-seeds
fuzz-build: $(FUZZ_TARGETS)

$(BUILD)/fuzz/gen_vsock_seeds: tests/fuzz/fuzz_vsock.c $(VMM_SRCS)
	@mkdir -p $(@D)
	$(CC) -O1 -g -std=gnu11 $(CFLAGS_WARN) -D_GNU_SOURCE -I. -DFUZZ_VSOCK_SEEDS -o $@ $^ $(HOST_LDLIBS)

fuzz-vsock-seeds: $(BUILD)/fuzz/gen_vsock_seeds
	@mkdir -p tests/fuzz/vsock
	$< tests/fuzz/vsock

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		n=$$(basename $$t); \
		case $$n in fuzz_vsock) seeds=tests/fuzz/vsock ;; fuzz_http) seeds=tests/fuzz/http ;; *) seeds=tests/fuzz/agent ;; esac; \
		mkdir -p $(BUILD)/fuzz/$$n-corpus; \
		echo "fuzz: $$n for $(FUZZ_SECONDS) s"; \
		$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(BUILD)/fuzz/$$n-corpus $$seeds || exit 1; \
	done
