# gateway/ — the HTTP API (DESIGN.md §8) as library code every host binary
# links: gateway/backend.h is the contract with runtimed, gateway/server.h
# the server itself.  libuv + jansson from Debian; llhttp's C sources come
# from Debian's node-llhttp and are copied into $(BUILD)/gen/llhttp/ (like
# generated code) so `#include "llhttp/llhttp.h"` works and the objects land
# in $(BUILD)/obj with everything else.
LLHTTP_DIR     ?= /usr/share/llhttp
LLHTTP_INC     ?= /usr/share/include/llhttp
LLHTTP_NAMES   := api http llhttp
LLHTTP_SRCS    := $(patsubst %,$(BUILD)/gen/llhttp/%.c,$(LLHTTP_NAMES))
LLHTTP_HDR     := $(BUILD)/gen/llhttp/llhttp.h

$(BUILD)/gen/llhttp/%.c: $(LLHTTP_DIR)/%.c
	@mkdir -p $(@D)
	cp $< $@
$(LLHTTP_HDR): $(LLHTTP_INC)/llhttp.h
	@mkdir -p $(@D)
	cp $< $@

# llhttp's generated code defines its internal functions without prototypes:
# the one warning relaxed, for these three files only.
$(call obj,$(LLHTTP_SRCS)): CFLAGS += -Wno-missing-prototypes

GW_SRCS := $(wildcard gateway/*.c)
HOST_LIB_SRCS += $(GW_SRCS) $(LLHTTP_SRCS)
GEN_HDRS += $(LLHTTP_HDR)
HOST_LDLIBS += -luv -ljansson
