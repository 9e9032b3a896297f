# guest-agent/ — PID 1 of the guest.  Built for the guest (never sanitized)
# into $(GBUILD)/bin/guest-agent; links the protocol code proto/module.mk
# lists in PROTO_GUEST_SRCS.
#
# The python runtime (runtime_python.c) is not in the agent: it is its own
# shared object, $(GBUILD)/bin/uf-runtime-python.so, linked against
# Debian's libpython3.11, which the agent dlopen()s for python functions
# only (guest/module.mk packs it into the python initramfs).
AGENT_PYRT_SRC := guest-agent/runtime_python.c
AGENT_SRCS := $(filter-out $(AGENT_PYRT_SRC),$(wildcard guest-agent/*.c))
AGENT_LDLIBS := -lprotobuf-c -lz
GUEST_BINS += $(GBUILD)/bin/guest-agent
$(GBUILD)/bin/guest-agent: $(call gobj,$(AGENT_SRCS) $(PROTO_GUEST_SRCS))
	@mkdir -p $(@D)
	$(CC) -o $@ $^ $(AGENT_LDLIBS)

# The protocol server, fixup effects, handlers and runtimes have no
# guest-only dependency: the unit tests link them natively.
HOST_LIB_SRCS += guest-agent/server.c guest-agent/fixup.c guest-agent/handler_echo.c \
                 guest-agent/handler_diag.c guest-agent/runtime.c guest-agent/runtime_pkg.c \
                 guest-agent/runtime_pkg_fs.c guest-agent/runtime_capture.c \
                 guest-agent/runtime_native.c guest-agent/runtime_exec.c
HOST_LDLIBS += -lz

# Debian's python3.11 headers (never the PATH's python3: it may be a pyenv
# build).  -isystem: CPython's headers are not ours to warn about.
AGENT_PY_CONFIG := /usr/bin/python3.11-config
AGENT_PY_CFLAGS := $(patsubst -I%,-isystem %,$(sort $(shell $(AGENT_PY_CONFIG) --includes 2>/dev/null)))
AGENT_PYRT_SO := $(GBUILD)/bin/uf-runtime-python.so
AGENT_PYRT_OBJ := $(GBUILD)/pyobj/guest-agent/runtime_python.o
GUEST_BINS += $(AGENT_PYRT_SO)

$(AGENT_PYRT_OBJ): $(AGENT_PYRT_SRC) | $(GGEN_HDRS)
	@mkdir -p $(@D)
	@test -n "$(AGENT_PY_CFLAGS)" || { echo "$(AGENT_PY_CONFIG) missing: apt-get install libpython3.11-dev" >&2; exit 1; }
	$(CC) $(GCFLAGS) -fPIC -fvisibility=hidden $(AGENT_PY_CFLAGS) -c -o $@ $<

$(AGENT_PYRT_SO): $(AGENT_PYRT_OBJ)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-z,defs -o $@ $^ -lpython3.11

# The unit tests load the python runtime natively (tests/unit/test_runtime_python.c).
$(BUILD)/tests/unit-tests: | $(AGENT_PYRT_SO)

# The runtimes in a real guest (tests/integration/runtimes.sh, through
# tools/kvm-run): boots the python initramfs, deploys build/functions/.
UNIT_TESTS += $(BUILD)/tests/runtime-itest
$(BUILD)/tests/runtime-itest: $(call obj,tests/integration/runtime_itest.c tests/integration/itest.c \
                              $(HOST_LIB_SRCS))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LDLIBS)
