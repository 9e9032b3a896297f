# cli/ — the `unifork` command-line client ($(BUILD)/bin/unifork), which
# talks to runtimed only through the HTTP API (DESIGN.md §8).  Its own
# libraries (jansson, zlib) are on its link line, not in HOST_LDLIBS.
#
# The unit tests (tests/unit/test_cli*.c) link the CLI's code without
# main.c and run the built binary against a fake server, so the unit-test
# binary gets the CLI objects, -ljansson -lz, and an order-only dependency
# on the binary from here.
CLI_LIB_SRCS := $(filter-out cli/main.c,$(wildcard cli/*.c)) vmm/err.c
CLI_LDLIBS   := -ljansson -lz

HOST_BINS += $(BUILD)/bin/unifork
$(BUILD)/bin/unifork: $(call obj,cli/main.c $(CLI_LIB_SRCS))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(CLI_LDLIBS)

$(BUILD)/tests/unit-tests: $(call obj,$(filter-out vmm/err.c,$(CLI_LIB_SRCS))) | $(BUILD)/bin/unifork
$(BUILD)/tests/unit-tests: HOST_LDLIBS += $(CLI_LDLIBS)
