# gateway/ — the HTTP API (DESIGN.md §8) as library code every host binary
# links: gateway/backend.h is the contract with runtimed, gateway/server.h
# the server itself.  libuv + jansson from Debian.
GW_SRCS := $(wildcard gateway/*.c)
HOST_LIB_SRCS += $(GW_SRCS)
HOST_LDLIBS += -luv -ljansson
