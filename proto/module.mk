# proto/ — the agent protocol: agent.proto compiled by protoc-c into
# $(BUILD)/gen/proto/ (host) and $(GBUILD)/gen/proto/ (guest), framing and
# message helpers shared by both sides, and the host-side client.
# Included before the other module.mk files: they use PROTO_GUEST_SRCS.

PROTOC_C ?= protoc-c

# One rule per generation directory: BUILD and GBUILD are the same directory
# in a plain build and differ under SAN=1.  Grouped targets (make 4.3): one
# protoc-c run writes both files.
define uf_proto_gen
$(1)/gen/proto/agent.pb-c.c $(1)/gen/proto/agent.pb-c.h &: proto/agent.proto
	@mkdir -p $(1)/gen
	$$(PROTOC_C) --proto_path=. --c_out=$(1)/gen proto/agent.proto
endef

$(eval $(call uf_proto_gen,$(BUILD)))
ifneq ($(BUILD),$(GBUILD))
$(eval $(call uf_proto_gen,$(GBUILD)))
endif

PROTO_HOST_SRCS := proto/frame.c proto/pb_check.c proto/agent_msg.c proto/agent_client.c \
                   $(BUILD)/gen/proto/agent.pb-c.c
HOST_LIB_SRCS += $(PROTO_HOST_SRCS)
PROTO_GUEST_SRCS := proto/frame.c proto/pb_check.c proto/agent_msg.c $(GBUILD)/gen/proto/agent.pb-c.c
GEN_HDRS  += $(BUILD)/gen/proto/agent.pb-c.h
GGEN_HDRS += $(GBUILD)/gen/proto/agent.pb-c.h
HOST_LDLIBS += -lprotobuf-c

# The generated code compiles cleanly under CFLAGS_WARN with protobuf-c
# 1.4.1 (gcc 12, clang 14): no per-file flag relaxations are needed.
