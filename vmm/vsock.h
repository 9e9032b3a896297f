/* vsock.h — the virtio-vsock device (virtio 1.2 §5.10), internal to
 * vmm/vsock.c and vmm/vsock_host.c.  Users include vmm/vsock_host.h.
 *
 * Who owns what:
 *   vsock.c       the queues: the device's virtio ops, validation of every
 *                 packet on the tx queue (RST or drop, counted), packets
 *                 written into rx buffers, the event queue.
 *   vsock_conn.c  connections as the guest sees them: the protocol state
 *                 machine, credit in both directions, what each connection
 *                 owes the guest (the send queue), timeouts, lifetime.
 *   vsock_host.c  the host-facing side: lifetime, the device thread / poll
 *                 loop (epoll over the queue kick eventfds and the
 *                 connections' sockets), connection slots and their
 *                 socketpairs, buffering of guest bytes, the public API.
 *
 * Locking: everything in struct vsock is guarded by the transport's mutex
 * (v->mmio.lock).  Every vsock__ function below is called with it held.
 *
 * A connection is one slot in v->conns.  Its guest side follows the vsock
 * protocol (CONNECTING -> ESTABLISHED -> CLOSING); `guest_done` marks that an
 * RST went either way: the guest will see nothing more of it, lookups skip
 * it, and the slot lingers only until the bytes the guest sent before are
 * written to the host socket (or the host end is gone).  Then it is freed.
 */
#ifndef VMM_VSOCK_H
#define VMM_VSOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vmm/virtio_mmio.h"
#include "vmm/virtq.h"
#include "vmm/vsock_host.h"

#define VSOCK_HOST_CID          2
#define VSOCK_HDR_LEN           44
#define VSOCK_MAX_PAYLOAD       (64u * 1024)    /* longest RW payload accepted / sent */
#define VSOCK_QUEUE_SIZE        256
#define VSOCK_MAX_ORPHANS       64              /* pending RSTs with no connection */
#define VSOCK_MAX_LISTENERS     32
#define VSOCK_BUDGET            256             /* packets per queue per pass */

enum { VSOCK_RXQ, VSOCK_TXQ, VSOCK_EVQ, VSOCK_NUM_QUEUES };

/* The 44-byte little-endian header, decoded to host order (vsock.c). */
struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};

void vsock_hdr_decode(struct vsock_hdr *h, const uint8_t raw[VSOCK_HDR_LEN]);
void vsock_hdr_encode(uint8_t raw[VSOCK_HDR_LEN], const struct vsock_hdr *h);

enum vsock_conn_state { VC_FREE, VC_CONNECTING, VC_ESTABLISHED, VC_CLOSING };

/* Control packets a connection owes the guest (c->ctl). */
#define VC_CTL_REQUEST          0x01
#define VC_CTL_RESPONSE         0x02
#define VC_CTL_RST              0x04
#define VC_CTL_SHUTDOWN         0x08
#define VC_CTL_CREDIT_UPDATE    0x10
#define VC_CTL_CREDIT_REQUEST   0x20

struct vsock_conn {
	uint32_t slot, gen;             /* epoll tag = gen << 32 | slot */
	enum vsock_conn_state state;
	uint32_t host_port, guest_port;
	int fd;                         /* our end of the socketpair */
	int user_fd;                    /* the caller's end until handed out */

	/* Host socket (edge-triggered: flags cleared on EAGAIN). */
	bool readable, writable;
	bool host_eof;                  /* read() gave 0: host sends no more */
	bool host_gone;                 /* host end closed: it receives no more */
	bool fd_wr_shut;                /* shutdown(SHUT_WR) done (guest sent SEND) */

	/* Guest side. */
	bool guest_done;                /* RST went either way */
	uint8_t guest_shut;             /* SHUTDOWN flags from the guest */
	uint8_t host_shut;              /* SHUTDOWN flags we owe or sent */
	uint8_t ctl;                    /* VC_CTL_* to send */

	/* Credit, guest -> host: what we advertise. */
	uint32_t buf_alloc, rx_cnt, fwd_cnt, adv_fwd_cnt;
	/* Credit, host -> guest: what the guest advertised. */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	bool credit_requested;

	/* Guest bytes not yet written to fd: ring of buf_alloc bytes. */
	uint8_t *buf;
	uint32_t head, len;

	struct vsock_conn *next, *prev; /* send queue (owes the guest a packet) */
	bool queued;
	uint64_t deadline_ns;           /* CONNECTING / CLOSING timeout; 0 = none */
	int *waiter;                    /* vsock_host_connect_wait() result slot */
};

struct vsock_orphan { uint64_t src_cid; uint32_t src_port, dst_port; };

struct vsock_listener {
	uint32_t port;
	vsock_accept_fn fn;
	void *arg;
};

struct vsock {
	struct virtio_mmio_dev mmio;    /* first: the lock lives here */
	struct virtio_dev_ops ops;
	uint64_t guest_cid;
	struct vsock_host_config cfg;

	struct vsock_conn *conns;       /* cfg.max_conns slots */
	uint32_t nconns;
	struct vsock_conn *sendq_head, *sendq_tail;
	struct vsock_orphan orphans[VSOCK_MAX_ORPHANS];
	uint32_t orphan_head, norphans;
	struct vsock_listener listeners[VSOCK_MAX_LISTENERS];
	uint32_t next_port;
	struct virtq_elem elem;         /* scratch for the queue being served */
	struct vsock_stats stats;
	uint64_t buf_bytes;             /* bytes of rings allocated (cfg.max_buf_bytes) */

	/* Host side (vsock_host.c). */
	int epfd, wake_fd;
	pthread_t thread;
	bool thread_on;
	bool stop;                      /* atomic */
	pthread_cond_t cond;            /* connect waiters */
	uint64_t next_deadline;         /* earliest connection deadline, 0 = none */
};

/* vsock.c */
int vsock__dev_init(struct vsock *v, const struct vmm_mem *mem, uint64_t base, int gsi, int vmfd)
	__attribute__((warn_unused_result));
void vsock__fill_rx(struct vsock *v);
void vsock__transport_reset(struct vsock *v);

/* vsock_conn.c */
struct vsock_conn *vsock__conn_lookup(struct vsock *v, uint32_t host_port, uint32_t guest_port);
/* A validated packet from the guest for c / a REQUEST for no connection
 * (-ECONNREFUSED: no listener, -EMFILE: no slot; the caller sends RST). */
void vsock__conn_pkt(struct vsock *v, struct vsock_conn *c, const struct vsock_hdr *h,
		     const struct virtq_elem *e);
int vsock__conn_request(struct vsock *v, const struct vsock_hdr *h);
/* The send queue: connections owing the guest a packet, round robin.
 * vsock__conn_next() fills *h (and for RW the payload at offset 44 of e's
 * writable part) or returns false; then vsock__conn_sent() re-queues or
 * frees c. */
struct vsock_conn *vsock__sendq_pop(struct vsock *v);
bool vsock__conn_next(struct vsock *v, struct vsock_conn *c, const struct virtq_elem *e,
		      struct vsock_hdr *h);
void vsock__conn_sent(struct vsock *v, struct vsock_conn *c);
void vsock__conn_event(struct vsock *v, struct vsock_conn *c, uint32_t epoll_events);
/* Host-initiated connection: queue a REQUEST to guest_port. */
int vsock__connect(struct vsock *v, uint32_t guest_port, struct vsock_conn **out)
	__attribute__((warn_unused_result));
/* Abort c towards the guest (RST) and drop what it holds. */
void vsock__conn_reset(struct vsock *v, struct vsock_conn *c);
/* Expire CONNECTING/CLOSING deadlines; returns the next one (0 = none). */
uint64_t vsock__timers(struct vsock *v, uint64_t now_ns);
void vsock__drop_all(struct vsock *v);

/* vsock_host.c */
uint64_t vsock__now_ns(void);
/* A fresh slot with a socketpair registered in epoll, or NULL (limit
 * reached, counted in stats.conn_limit, or no fds). */
struct vsock_conn *vsock__conn_new(struct vsock *v, uint32_t host_port, uint32_t guest_port);
/* The host side is finished: close both socket ends (the caller reads
 * EOF after what we already wrote) and drop what the ring still holds. */
void vsock__conn_close_fd(struct vsock *v, struct vsock_conn *c);
/* Close the connection's fds, free its buffer, return the slot (the caller
 * has taken it off the send queue and answered its waiter). */
void vsock__conn_free(struct vsock *v, struct vsock_conn *c);
/* readv from the host socket: >0 bytes, 0 = EOF (sets host_eof, and
 * host_gone if the peer closed), -EAGAIN (clears readable). */
ssize_t vsock__conn_read(struct vsock_conn *c, const struct iovec *iov, int n);
/* Take `len` guest bytes at readable offset `off` of e: written through to
 * the socket when possible, the rest kept in the ring.  Caller checked
 * credit (len + c->len <= buf_alloc).  0, -ENOMEM, or -ENOBUFS: a ring for
 * c would take the VM's rings past cfg.max_buf_bytes (counted; the caller
 * resets c). */
int vsock__conn_from_guest(struct vsock *v, struct vsock_conn *c, const struct virtq_elem *e, size_t off, uint32_t len)
	__attribute__((warn_unused_result));
/* Write the ring to the socket as far as it goes; shuts the socket's write
 * side once the ring is empty and the guest sent SHUTDOWN(SEND).  An empty
 * ring is freed (its bytes go back to the VM's budget). */
void vsock__conn_flush(struct vsock *v, struct vsock_conn *c);
void vsock__conn_shut_rd(struct vsock_conn *c);
const struct vsock_listener *vsock__listener(const struct vsock *v, uint32_t port);

#endif
