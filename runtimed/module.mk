# runtimed/ — the daemon (build/bin/runtimed) and its forker worker process
# (build/bin/uf-worker, sources in forker/worker/), plus the runtimed <->
# worker protocol: proto/worker.proto compiled by protoc-c like
# proto/module.mk compiles agent.proto (host side only) and its helpers in
# proto/worker_msg.c.  Everything but the two main()s is library code in
# HOST_LIB_SRCS, so the unit tests link it.
#
# Included after gateway/module.mk: the links below take HOST_LIB_SRCS as
# it stands here (proto, snapshotter, vmm, forker, agent server, gateway).

WORKER_PROTO_C := $(BUILD)/gen/proto/worker.pb-c.c
WORKER_PROTO_H := $(BUILD)/gen/proto/worker.pb-c.h
$(WORKER_PROTO_C) $(WORKER_PROTO_H) &: proto/worker.proto
	@mkdir -p $(BUILD)/gen
	$(PROTOC_C) --proto_path=. --c_out=$(BUILD)/gen proto/worker.proto
GEN_HDRS += $(WORKER_PROTO_H)

WPROTO_SRCS   := proto/worker_msg.c $(WORKER_PROTO_C)
WORKER_SRCS   := $(filter-out forker/worker/main.c,$(wildcard forker/worker/*.c))
RUNTIMED_SRCS := $(filter-out runtimed/main.c,$(wildcard runtimed/*.c))
HOST_LIB_SRCS += $(WPROTO_SRCS) $(WORKER_SRCS) $(RUNTIMED_SRCS)
# The worker jail and runtimed's own filter (forker/worker/jail.h, runtimed/seccomp.h).
HOST_LDLIBS += -lseccomp

HOST_BINS += $(BUILD)/bin/uf-worker $(BUILD)/bin/runtimed
$(BUILD)/bin/uf-worker: $(call obj,forker/worker/main.c $(HOST_LIB_SRCS))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LDLIBS)

$(BUILD)/bin/runtimed: $(call obj,runtimed/main.c $(HOST_LIB_SRCS))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LDLIBS)

# The end-to-end suite's own native function (tests/e2e/run.sh deploys it):
# guest code, built like functions/ builds its examples.
E2E_PKG := $(GBUILD)/e2e/e2e-native.tar.gz
GUEST_BINS += $(E2E_PKG)
$(GBUILD)/e2e/fn/handler.so: tests/e2e/fn/handler.c functions/sdk/unifork.h
	@mkdir -p $(@D)
	$(CC) -O2 -g -std=gnu11 $(CFLAGS_WARN) -D_GNU_SOURCE -Ifunctions/sdk -shared -fPIC -o $@ $<
$(E2E_PKG): $(GBUILD)/e2e/fn/handler.so
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu \
	    -C $(<D) -cf - handler.so | gzip -n -9 >$@.tmp && mv $@.tmp $@
