# vmm/ — the KVM core.  VMM_SRCS is library code shared by every host
# binary that runs VMs; uf-vm is the debug front end.
VMM_SRCS := $(filter-out vmm/uf_vm_main.c,$(wildcard vmm/*.c))
HOST_LIB_SRCS += $(VMM_SRCS)
HOST_LDLIBS += -lpthread

HOST_BINS += $(BUILD)/bin/uf-vm
$(BUILD)/bin/uf-vm: $(call obj,vmm/uf_vm_main.c $(VMM_SRCS) $(PROTO_HOST_SRCS))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LDLIBS)
