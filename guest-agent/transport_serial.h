/* transport_serial.h — the agent protocol over a virtio-serial port instead
 * of vsock (kernel command line `uf_transport=virtio-serial`).  This is how
 * a QEMU guest speaks to the host without vhost-vsock (bench/vsock's peer):
 *
 *   -device virtio-serial-device
 *   -chardev socket,id=uf,path=SOCK,server=on,wait=off
 *   -device virtserialport,chardev=uf,name=uf.agent
 *
 * and the host connects to SOCK as a unix stream client and reads the Hello.
 *
 * A port is one byte stream without connections: one host at a time, and a
 * "session" is the time the host side is open.  The agent waits (without
 * spinning: SIGIO on the port's host-connection change) until a host is
 * connected, serves it with agent_server_serve_fd() (Hello first, then
 * requests) until it disconnects, and waits for the next one, until a
 * Shutdown.  After a protocol violation the agent sends the Error frame and
 * discards input until the host disconnects (or is quiet for a second),
 * since the stream has lost its frame boundaries.
 *
 * Facts of the 6.1 virtio_console driver this relies on: read() returns 0
 * and poll() reports POLLHUP while the host side is closed (so neither can
 * wait for a host); a blocking write() waits until a host is connected;
 * host connect/disconnect sends SIGIO to an O_ASYNC owner; reads return at
 * most one 4 KiB receive buffer, writes take at most 32 KiB.
 *
 * Limitation: the port cannot tell one host connection from the next.  A
 * host that disconnects while the agent still owes it a reply: that reply
 * waits for the next host and reaches it before its Hello (the client then
 * refuses the Hello with -EPROTO and must reconnect).  vsock has no such
 * case; this transport is for benchmarks and debugging.
 */
#ifndef UF_AGENT_TRANSPORT_SERIAL_H
#define UF_AGENT_TRANSPORT_SERIAL_H

#include "guest-agent/server.h"

#define AGENT_SERIAL_PORT_NAME        "uf.agent"
#define AGENT_SERIAL_SYSFS            "/sys/class/virtio-ports"
#define AGENT_SERIAL_OPEN_TIMEOUT_MS  60000

/* Find and open the agent's port: the one whose sysfs `name` is `name`
 * (under AGENT_SERIAL_SYSFS), or, when ports exist but none is so named
 * after a short grace period, the first one (lowest vportNpM).  Ports
 * appear asynchronously after the driver probed (the host announces them
 * and their names over the control queue), so this waits up to timeout_ms
 * for the port and its /dev node (devtmpfs must be mounted on /dev).
 * Returns the fd (O_RDWR, blocking, close-on-exec; the caller owns it) or
 * -errno: -ENODEV when no port appeared in time, or open(2)'s error. */
int agent_serial_open(const char *name, int timeout_ms) __attribute__((warn_unused_result));

/* Serve the protocol on the port `fd` (not owned), one host session after
 * another, until a Shutdown: returns its status (0..255), or -errno when
 * the port itself fails (-ENODEV: unplugged) or for bad arguments.
 * Blocks SIGIO in the calling thread; toggles O_ASYNC and O_NONBLOCK on the
 * port while waiting for a host and restores them. */
int agent_serial_run(int fd, const struct agent_handler *h) __attribute__((warn_unused_result));
int agent_serial_run_opts(int fd, const struct agent_server_opts *opts)
	__attribute__((warn_unused_result));

#endif
