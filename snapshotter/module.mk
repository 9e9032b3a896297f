# snapshotter/ — VM snapshots: vCPU/VM/device state capture and restore, the
# sparse memory file, the on-disk format (proto/snapshot.proto, compiled
# here like proto/module.mk compiles agent.proto: host side only), uf-snap,
# and the guest snapshot test build/tests/snap-itest.
#
# Included right after proto/module.mk, before vmm/module.mk: VMM_SRCS does
# not exist yet, so rules here name the VMM sources with the same wildcard.

SNAP_PROTO_C := $(BUILD)/gen/proto/snapshot.pb-c.c
SNAP_PROTO_H := $(BUILD)/gen/proto/snapshot.pb-c.h
$(SNAP_PROTO_C) $(SNAP_PROTO_H) &: proto/snapshot.proto
	@mkdir -p $(BUILD)/gen
	$(PROTOC_C) --proto_path=. --c_out=$(BUILD)/gen proto/snapshot.proto
GEN_HDRS += $(SNAP_PROTO_H)

SNAP_SRCS := $(filter-out snapshotter/uf_snap_main.c,$(wildcard snapshotter/*.c)) $(SNAP_PROTO_C)
SNAP_VMM_SRCS := $(filter-out vmm/uf_vm_main.c,$(wildcard vmm/*.c))
HOST_LIB_SRCS += $(SNAP_SRCS)
HOST_LDLIBS += -luring -lcrypto

HOST_BINS += $(BUILD)/bin/uf-snap
$(BUILD)/bin/uf-snap: $(call obj,snapshotter/uf_snap_main.c $(SNAP_SRCS) $(SNAP_VMM_SRCS))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LDLIBS)

# uf-vm's `boot --snapshot-after-ready` and `restore` (vmm/uf_vm_main.c) use
# the snapshotter: its objects join uf-vm's link (vmm/module.mk's recipe
# links $^ with $(HOST_LDLIBS)).
$(BUILD)/bin/uf-vm: $(call obj,$(SNAP_SRCS))

# Guest test: boot, snapshot, restore (tests/integration/snapshot.sh).
UNIT_TESTS += $(BUILD)/tests/snap-itest
$(BUILD)/tests/snap-itest: $(call obj,tests/integration/snap_itest.c $(HOST_LIB_SRCS) $(SNAP_VMM_SRCS))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LDLIBS)
