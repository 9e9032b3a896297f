# guest-agent/ — PID 1 of the guest.  Built for the guest (never sanitized)
# into $(GBUILD)/bin/guest-agent; links the protocol code proto/module.mk
# lists in PROTO_GUEST_SRCS.
AGENT_SRCS := $(wildcard guest-agent/*.c)
AGENT_LDLIBS := -lprotobuf-c
GUEST_BINS += $(GBUILD)/bin/guest-agent
$(GBUILD)/bin/guest-agent: $(call gobj,$(AGENT_SRCS) $(PROTO_GUEST_SRCS))
	@mkdir -p $(@D)
	$(CC) -o $@ $^ $(AGENT_LDLIBS)

# The protocol server, fixup effects and handlers have no guest-only
# dependency: the unit tests link them natively.
HOST_LIB_SRCS += guest-agent/server.c guest-agent/fixup.c guest-agent/handler_echo.c \
                 guest-agent/handler_diag.c
