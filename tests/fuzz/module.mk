# tests/fuzz/ — libFuzzer targets, built with clang into $(BUILD)/fuzz/.
# The library code they exercise is compiled again for fuzzing (coverage
# instrumentation + ASan + UBSan) into $(BUILD)/fuzzobj/, apart from the
# normal objects.
#
#   make fuzz-build                 build every target
#   make fuzz [UNIFORK_FUZZ_SECONDS=600]
#                                   build, run each target that long (600 s
#                                   by default; CI runs 60 s), then merge the
#                                   inputs that found new coverage into the
#                                   committed corpora tests/fuzz/<dir>/
#                                   (libFuzzer -merge=1; commit them after).
#                                   Crashes go to tests/fuzz/crashes/.
#   make fuzz-vsock-seeds           rewrite tests/fuzz/vsock/ from fuzz_vsock.c
#   make fuzz-worker-seeds          rewrite tests/fuzz/worker/ from fuzz_worker_proto.c
#
# Corpora: tests/fuzz/run (what CI runs) reads tests/fuzz/<dir>/ and writes
# new inputs only into the scratch corpus $(BUILD)/fuzz/<name>-corpus, so a
# CI run never dirties the work tree; only `make fuzz` writes tests/fuzz/.
#
# Targets (corpus directory): fuzz_vsock (vsock/: vmm/ virtio-mmio +
# virtqueues + vsock, no KVM), fuzz_agent_proto (agent/: proto/ framing and
# envelope decoding), fuzz_http (http/: gateway/ HTTP request path) and
# fuzz_pkg (pkg/: guest-agent/ function package reader, tar.gz uploads) and
# fuzz_worker_proto (worker/: worker -> runtimed frames and messages).

FUZZ_CC      ?= clang
UNIFORK_FUZZ_SECONDS ?= 600
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
FUZZ_AGENT_OBJS := $(call fuzzobj,tests/fuzz/fuzz_agent_proto.c proto/frame.c proto/pb_check.c proto/agent_msg.c \
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

# fuzz_pkg: the agent's .tar.gz package reader (zlib + tar + filesystem
# rules), natively; seeds from tests/fuzz/gen_pkg_seeds.py.
FUZZ_TARGETS += $(BUILD)/fuzz/fuzz_pkg
$(BUILD)/fuzz/fuzz_pkg: $(call fuzzobj,tests/fuzz/fuzz_pkg.c guest-agent/runtime_pkg.c guest-agent/runtime_pkg_fs.c)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $^ -lz

# fuzz_worker_proto: what runtimed parses from a worker's socket (frame
# decoder + proto/worker_msg.c); seeds written by the target's own source.
FUZZ_TARGETS += $(BUILD)/fuzz/fuzz_worker_proto
FUZZ_WORKER_OBJS := $(call fuzzobj,tests/fuzz/fuzz_worker_proto.c proto/frame.c proto/pb_check.c proto/worker_msg.c \
                    $(BUILD)/gen/proto/worker.pb-c.c)
$(FUZZ_WORKER_OBJS): $(BUILD)/gen/proto/worker.pb-c.h
$(BUILD)/fuzz/fuzz_worker_proto: $(FUZZ_WORKER_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $^ -lprotobuf-c

$(BUILD)/fuzz/gen_worker_seeds: tests/fuzz/fuzz_worker_proto.c proto/frame.c proto/pb_check.c proto/worker_msg.c \
                                $(BUILD)/gen/proto/worker.pb-c.c
	@mkdir -p $(@D)
	$(CC) -O1 -g -std=gnu11 $(CFLAGS_WARN) -D_GNU_SOURCE -I. -I$(BUILD)/gen -DFUZZ_WORKER_SEEDS -o $@ $^ -lprotobuf-c

fuzz-worker-seeds: $(BUILD)/fuzz/gen_worker_seeds
	@mkdir -p tests/fuzz/worker
	$< tests/fuzz/worker

# Seed programs for fuzz_vsock are written by the target's own source.
.PHONY: fuzz-build fuzz-vsock-seeds fuzz-worker-seeds
fuzz-build: $(FUZZ_TARGETS)

$(BUILD)/fuzz/gen_vsock_seeds: tests/fuzz/fuzz_vsock.c $(VMM_SRCS)
	@mkdir -p $(@D)
	$(CC) -O1 -g -std=gnu11 $(CFLAGS_WARN) -D_GNU_SOURCE -I. -DFUZZ_VSOCK_SEEDS -o $@ $^ $(HOST_LDLIBS)

fuzz-vsock-seeds: $(BUILD)/fuzz/gen_vsock_seeds
	@mkdir -p tests/fuzz/vsock
	$< tests/fuzz/vsock

fuzz: fuzz-build
	tests/fuzz/run --seconds $(UNIFORK_FUZZ_SECONDS) --merge
