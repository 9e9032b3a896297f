# bench/ — benchmarks are scripts over the built binaries (bench/run), plus
# the C programs they drive.

# uf-bench-vsock: agent round trips over our vsock (in-process VM) or over a
# unix socket (QEMU's virtio-serial chardev); driven by bench/vsock.
HOST_BINS += $(BUILD)/bin/uf-bench-vsock
$(BUILD)/bin/uf-bench-vsock: $(call obj,bench/vsock_bench.c $(HOST_LIB_SRCS))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LDLIBS)

# uf-bench-fork: Linux clones on pre-built shells, step by step; driven by
# bench/fork (see bench/fork_bench.c).
HOST_BINS += $(BUILD)/bin/uf-bench-fork
$(BUILD)/bin/uf-bench-fork: $(call obj,bench/fork_bench.c $(HOST_LIB_SRCS))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LDLIBS)
