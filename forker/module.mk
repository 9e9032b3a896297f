# forker/ — VM shell pool, copy-on-write clones, templates (library code in
# every host binary); uf-bench-fork-micro, the clone benchmark bench/fork-micro
# drives natively (see bench/fork_micro.c).
FORKER_SRCS := $(wildcard forker/*.c)
HOST_LIB_SRCS += $(FORKER_SRCS)

HOST_BINS += $(BUILD)/bin/uf-bench-fork-micro
$(BUILD)/bin/uf-bench-fork-micro: $(call obj,bench/fork_micro.c $(HOST_LIB_SRCS))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LDLIBS)
