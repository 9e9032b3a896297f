# tests/ — the unit-test binary links every tests/unit/test_*.c with the host
# library code of all modules (HOST_LIB_SRCS).
UT_SRCS := tests/unit/ut_main.c $(wildcard tests/unit/test_*.c)
UNIT_TESTS += $(BUILD)/tests/unit-tests
$(BUILD)/tests/unit-tests: $(call obj,$(UT_SRCS) $(HOST_LIB_SRCS))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LDLIBS)

# Guest integration tests written in C (run through tools/kvm-run).
ITESTS := $(BUILD)/tests/vsock-itest
UNIT_TESTS += $(ITESTS)
$(BUILD)/tests/vsock-itest: $(call obj,tests/integration/vsock_itest.c tests/integration/itest.c $(HOST_LIB_SRCS))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LDLIBS)

# Copy-on-write clones of a snapshotted Linux guest (tests/integration/fork.sh).
ITEST_SRCS := tests/integration/itest.c
UNIT_TESTS += $(BUILD)/tests/fork-itest
$(BUILD)/tests/fork-itest: $(call obj,tests/integration/fork_itest.c $(ITEST_SRCS) $(HOST_LIB_SRCS))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LDLIBS)
