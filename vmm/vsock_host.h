/* vsock_host.h — a VM's virtio-vsock device, as the VMM and the daemon see
 * it: guest streams appear as ordinary AF_UNIX SOCK_STREAM sockets.
 *
 * Lifetime (the VMM integrator):
 *   vsock_host_create()     allocates the device, its virtio-mmio transport at
 *                           mmio_base (4 KiB window) and its eventfds; with
 *                           vmfd >= 0 the interrupt goes to `gsi` by irqfd and
 *                           queue kicks are ioeventfds.
 *   vsock_host_mmio()       the transport: the vCPU loop calls
 *                           virtio_mmio_access(mmio, gpa, data, len, is_write)
 *                           for every KVM_EXIT_MMIO that virtio_mmio_handles()
 *                           (or registers virtio_mmio_access_fn with the mmio
 *                           pointer as opaque).
 *   vsock_host_start()      starts the device thread (one per VM): it waits in
 *                           epoll on the queue kicks, the connections' sockets
 *                           and its timers.  OR, without a thread, the caller
 *                           drives the same loop with vsock_host_poll() (tests,
 *                           fuzzing, a caller's own event loop via
 *                           vsock_host_fd()).
 *   vsock_host_release()    after the vCPUs have stopped: stops and joins the
 *                           thread, closes every fd the device owns (callers'
 *                           ends then read EOF) and frees everything.
 *
 * Connections (the daemon; any thread, never from inside an accept callback):
 *   vsock_host_connect()       host -> guest port.  Returns at once with the
 *                              caller's socket end; bytes written before the
 *                              guest accepts wait in the socket.  Refusal, a
 *                              guest RST or the connect timeout: the socket
 *                              reads EOF (writes fail with EPIPE).
 *   vsock_host_connect_wait()  the same, but waits up to timeout_ms (< 0: the
 *                              configured connect timeout) for the guest's
 *                              answer (needs the device thread or another
 *                              thread polling) and returns -ECONNREFUSED /
 *                              -ETIMEDOUT instead of an fd.
 *   vsock_host_listen()        guest -> host port: each accepted connection
 *                              is handed to fn(arg, fd, ...) on the device
 *                              thread, with the device lock held: take the fd
 *                              and return, never call vsock_host_* from it.
 * The caller owns the fds it gets and closes them: close() sends the guest
 * SHUTDOWN (then RST), shutdown(SHUT_WR) sends SHUTDOWN(SEND).  A guest
 * SHUTDOWN(SEND) or close shows as EOF after every byte it sent.
 *
 * Back-pressure: guest -> host bytes go straight to the socket; what the
 * socket does not take waits in a per-connection buffer of conn_buf_bytes,
 * which is exactly the credit (buf_alloc) the guest is given, so a slow
 * reader stalls the guest and nothing grows.  A ring exists only while it
 * holds bytes, and the rings of one VM together never exceed max_buf_bytes:
 * a connection that would need a ring past it is reset (stats.buf_limit), so
 * a guest flooding many connections toward a host that does not read holds
 * at most max_buf_bytes of VMM memory (plus the sockets' own buffers).  Host -> guest bytes are read
 * from the socket only while the guest has credit and rx buffers, so a slow
 * guest stalls the writer in the socket.  Both socket ends get SO_SNDBUF =
 * conn_buf_bytes.  Bytes are never dropped while both sides are open.
 */
#ifndef VMM_VSOCK_HOST_H
#define VMM_VSOCK_HOST_H

#include <stdint.h>

#include "vmm/guest_mem.h"

struct vsock;
struct virtio_mmio_dev;

/* Accepted guest connection: fd is the caller's now.  Device lock held. */
typedef void (*vsock_accept_fn)(void *arg, int fd, uint32_t guest_port, uint32_t host_port);

struct vsock_host_config {              /* 0 = default */
	uint32_t max_conns;             /* 64: connections per VM */
	uint32_t conn_buf_bytes;        /* 256 KiB: credit / buffer per connection */
	uint32_t connect_timeout_ms;    /* 2000: host connect without RESPONSE */
	uint32_t close_timeout_ms;      /* 2000: our SHUTDOWN without guest RST */
	uint32_t max_buf_bytes;         /* 1 MiB (at least conn_buf_bytes): guest
					 * bytes held in rings, all connections */
};

struct vsock_stats {
	uint64_t tx_pkts, rx_pkts;      /* guest->device, device->guest */
	uint64_t drop_short;            /* chain too short for a header */
	uint64_t drop_bad_cid;          /* wrong src_cid (dropped) or dst_cid (RST) */
	uint64_t drop_bad_type, drop_bad_op, drop_bad_len;
	uint64_t rx_bad_buf;            /* rx buffer too small for a header */
	uint64_t rst_sent, rst_unknown; /* all RSTs; those for no connection */
	uint64_t orphan_overflow;       /* RSTs not sent: orphan queue full */
	uint64_t credit_violations;     /* guest sent beyond our credit: RST */
	uint64_t conn_limit;            /* refused: max_conns reached */
	uint64_t buf_limit;             /* reset: a ring past max_buf_bytes */
	uint64_t conns_opened, conns_closed;
	uint64_t ring_errors;           /* malformed virtqueues: NEEDS_RESET */
};

int vsock_host_create(struct vsock **out, const struct vmm_mem *mem, uint64_t mmio_base, int gsi,
		      int vmfd, uint64_t guest_cid, const struct vsock_host_config *cfg)
	__attribute__((warn_unused_result));
struct virtio_mmio_dev *vsock_host_mmio(struct vsock *v);
int vsock_host_start(struct vsock *v) __attribute__((warn_unused_result));
/* Stop and join the device thread (no-op without one); start may follow.
 * Snapshots: stop, virtio_mmio_save() with the vCPUs paused, capture
 * memory, start.  Restore: create over the restored memory,
 * virtio_mmio_restore(), vsock_host_transport_reset(), start. */
void vsock_host_stop(struct vsock *v);
/* One pass of the device loop: wait up to timeout_ms (-1 = until something
 * happens) and handle what is ready.  Returns events handled or -errno. */
int vsock_host_poll(struct vsock *v, int timeout_ms);
/* The epoll fd of the loop, for callers who drive vsock_host_poll() from
 * their own loop (readable = call vsock_host_poll(v, 0)). */
int vsock_host_fd(const struct vsock *v);
void vsock_host_release(struct vsock *v);

int vsock_host_connect(struct vsock *v, uint32_t guest_port, int *fd_out)
	__attribute__((warn_unused_result));
int vsock_host_connect_wait(struct vsock *v, uint32_t guest_port, int timeout_ms, int *fd_out)
	__attribute__((warn_unused_result));
/* 0, -EADDRINUSE, -ENOSPC (too many listeners), -EINVAL. */
int vsock_host_listen(struct vsock *v, uint32_t host_port, vsock_accept_fn fn, void *arg)
	__attribute__((warn_unused_result));
int vsock_host_unlisten(struct vsock *v, uint32_t host_port);

/* After a snapshot restore: drop every connection and tell the guest with
 * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (its listeners survive). */
void vsock_host_transport_reset(struct vsock *v);
void vsock_host_stats(struct vsock *v, struct vsock_stats *out);
/* Connections in use (including those still draining to the host). */
uint32_t vsock_host_nconns(struct vsock *v);

#endif
