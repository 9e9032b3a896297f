# tools/sandbox/ — the KVM probe and the KVM sandbox (see tools/sandbox/README.md).
#
# kvm-probe: host binary; its logic (probe.c) is library code so the unit
# tests and other host binaries (runtimed's /v1/info) can use it.
# init: the sandbox VM's /init, static, always in the plain build dir (it is
# guest code: never sanitized).  The sandbox initramfs itself is assembled
# by tools/sandbox/run under $(UNIFORK_CACHE)/sandbox/, since it holds the
# Debian kernel's modules, fetched on first use.

SANDBOX_PROBE_LIB := tools/sandbox/probe.c
HOST_LIB_SRCS += $(SANDBOX_PROBE_LIB)

HOST_BINS += $(BUILD)/bin/kvm-probe
$(BUILD)/bin/kvm-probe: $(call obj,tools/sandbox/kvm_probe.c $(SANDBOX_PROBE_LIB))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^

GUEST_BINS += $(GBUILD)/sandbox/init
$(GBUILD)/sandbox/init: $(call gobj,tools/sandbox/init.c)
	@mkdir -p $(@D)
	$(CC) -static -o $@ $^

.PHONY: sandbox
sandbox: $(BUILD)/bin/kvm-probe $(GBUILD)/sandbox/init
