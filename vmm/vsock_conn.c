/* vsock_conn.c — virtio-vsock connections: protocol state, credit, lifetime. */
#include "vmm/vsock.h"

#include <errno.h>
#include <linux/virtio_vsock.h>
#include <sys/epoll.h>

#define SHUT_BOTH (VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND)

/* --- send queue: connections that owe the guest a packet, round robin. */

static void sendq_del(struct vsock *v, struct vsock_conn *c)
{
	if (!c->queued)
		return;
	if (c->prev) c->prev->next = c->next; else v->sendq_head = c->next;
	if (c->next) c->next->prev = c->prev; else v->sendq_tail = c->prev;
	c->next = c->prev = NULL;
	c->queued = false;
}

static void sendq_add(struct vsock *v, struct vsock_conn *c)
{
	if (c->queued)
		return;
	c->prev = v->sendq_tail;
	c->next = NULL;
	if (v->sendq_tail) v->sendq_tail->next = c; else v->sendq_head = c;
	v->sendq_tail = c;
	c->queued = true;
}

struct vsock_conn *vsock__sendq_pop(struct vsock *v)
{
	struct vsock_conn *c = v->sendq_head;
	if (c)
		sendq_del(v, c);
	return c;
}

/* --- credit. */

static uint32_t peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

static bool can_send_data(const struct vsock_conn *c)
{
	return c->state == VC_ESTABLISHED && !c->guest_done && c->readable && !c->host_eof &&
	       !(c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_RCV) && peer_credit(c) > 0;
}

/* fwd_cnt moved: tell the guest once its view of our free space runs low. */
static void credit_check(struct vsock_conn *c)
{
	uint32_t unadv = c->fwd_cnt - c->adv_fwd_cnt;
	uint32_t guest_free = c->buf_alloc - (c->rx_cnt - c->adv_fwd_cnt);
	if (unadv && !c->guest_done && c->state == VC_ESTABLISHED &&
	    (guest_free < VSOCK_MAX_PAYLOAD || unadv >= c->buf_alloc / 2))
		c->ctl |= VC_CTL_CREDIT_UPDATE;
}

/* Put c on the send queue if it owes the guest something. */
static void conn_update(struct vsock *v, struct vsock_conn *c)
{
	if (c->state == VC_ESTABLISHED && !c->guest_done && c->readable && !c->host_eof &&
	    !(c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_RCV) && peer_credit(c) == 0 && !c->credit_requested) {
		c->ctl |= VC_CTL_CREDIT_REQUEST;        /* stalled on the guest */
		c->credit_requested = true;
	}
	if (c->ctl || can_send_data(c))
		sendq_add(v, c);
}

/* --- connection lifetime. */

static void conn_release(struct vsock *v, struct vsock_conn *c, int result)
{
	sendq_del(v, c);
	if (c->waiter) {
		*c->waiter = result;
		c->waiter = NULL;
		pthread_cond_broadcast(&v->cond);
	}
	vsock__conn_free(v, c);
}

/* Once the guest is done with c: close the host side when the guest's bytes
 * have reached it, and free c when, besides, its RST is out (or can never
 * go out: the driver stopped using the rx queue). */
static bool conn_check(struct vsock *v, struct vsock_conn *c)
{
	if (!c->guest_done)
		return false;
	if (c->fd >= 0 && (!c->len || c->host_gone))
		vsock__conn_close_fd(v, c);
	if (c->fd >= 0 || ((c->ctl & VC_CTL_RST) && virtio_mmio_queue(&v->mmio, VSOCK_RXQ)))
		return false;
	conn_release(v, c, c->state == VC_CONNECTING ? -ECONNREFUSED : -ECONNRESET);
	return true;
}

void vsock__conn_reset(struct vsock *v, struct vsock_conn *c)
{
	if (c->guest_done)
		return;
	c->guest_done = true;
	c->ctl = VC_CTL_RST;
	c->deadline_ns = 0;
	vsock__conn_close_fd(v, c);     /* the stream is broken: drop the rest */
	sendq_add(v, c);
}

static void set_deadline(struct vsock *v, struct vsock_conn *c, uint32_t ms)
{
	uint64_t next = __atomic_load_n(&v->next_deadline, __ATOMIC_RELAXED);
	c->deadline_ns = vsock__now_ns() + (uint64_t)ms * 1000000;
	if (!next || c->deadline_ns < next)     /* read unlocked by the poll loop */
		__atomic_store_n(&v->next_deadline, c->deadline_ns, __ATOMIC_RELAXED);
}

/* Owe the guest SHUTDOWN with (cumulative) flags; both = we are closing. */
static void host_shutdown(struct vsock *v, struct vsock_conn *c, uint8_t flags)
{
	if (c->guest_done || (c->host_shut | flags) == c->host_shut)
		return;
	if (c->state == VC_CONNECTING) {
		vsock__conn_reset(v, c);        /* caller gave up before the answer */
		return;
	}
	c->host_shut |= flags;
	c->ctl |= VC_CTL_SHUTDOWN;
	if (c->host_shut == SHUT_BOTH && c->state == VC_ESTABLISHED) {
		c->state = VC_CLOSING;          /* wait for the guest's RST */
		set_deadline(v, c, v->cfg.close_timeout_ms);
	}
	sendq_add(v, c);
}

/* The host end stopped receiving.  If it also sends no more (EOF, or the
 * guest shut its receive side) the connection is closing both ways. */
static void host_gone_now(struct vsock *v, struct vsock_conn *c)
{
	host_shutdown(v, c, VIRTIO_VSOCK_SHUTDOWN_RCV | (c->host_eof ? VIRTIO_VSOCK_SHUTDOWN_SEND : 0));
}

static void conn_flush(struct vsock *v, struct vsock_conn *c)
{
	bool gone = c->host_gone;
	vsock__conn_flush(v, c);
	if (!gone && c->host_gone)
		host_gone_now(v, c);
	credit_check(c);
}

void vsock__conn_event(struct vsock *v, struct vsock_conn *c, uint32_t ev)
{
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = true;
	if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->writable = true;
	conn_flush(v, c);
	if ((ev & EPOLLHUP) && !c->host_gone) {
		c->host_gone = true;            /* the caller closed its end */
		c->len = 0;
		host_gone_now(v, c);
	}
	if (!conn_check(v, c))
		conn_update(v, c);
}

struct vsock_conn *vsock__conn_lookup(struct vsock *v, uint32_t host_port, uint32_t guest_port)
{
	for (uint32_t i = 0, seen = 0; i < v->cfg.max_conns && seen < v->nconns; i++) {
		struct vsock_conn *c = &v->conns[i];
		if (c->state == VC_FREE)
			continue;
		seen++;
		if (!c->guest_done && c->host_port == host_port && c->guest_port == guest_port)
			return c;
	}
	return NULL;
}

static bool host_port_used(struct vsock *v, uint32_t port)
{
	if (vsock__listener(v, port))
		return true;
	for (uint32_t i = 0; i < v->cfg.max_conns; i++)
		if (v->conns[i].state != VC_FREE && v->conns[i].host_port == port)
			return true;
	return false;
}

int vsock__connect(struct vsock *v, uint32_t guest_port, struct vsock_conn **out)
{
	uint32_t port = 0;

	if (v->nconns >= v->cfg.max_conns) {
		v->stats.conn_limit++;
		return -EMFILE;
	}
	for (int tries = 0; tries < 4096 && !port; tries++) {
		/* Ephemeral host ports: [49152, 2^31). */
		if (v->next_port < 49152 || v->next_port >= 0x80000000u)
			v->next_port = 49152;
		uint32_t p = v->next_port++;
		if (!host_port_used(v, p))
			port = p;
	}
	if (!port)
		return -EADDRNOTAVAIL;
	struct vsock_conn *c = vsock__conn_new(v, port, guest_port);
	if (!c)
		return -EMFILE;
	c->state = VC_CONNECTING;
	c->ctl = VC_CTL_REQUEST;
	set_deadline(v, c, v->cfg.connect_timeout_ms);
	sendq_add(v, c);
	*out = c;
	return 0;
}

uint64_t vsock__timers(struct vsock *v, uint64_t now)
{
	uint64_t next = 0;
	for (uint32_t i = 0; i < v->cfg.max_conns; i++) {
		struct vsock_conn *c = &v->conns[i];
		if (c->state == VC_FREE || !c->deadline_ns)
			continue;
		if (now < c->deadline_ns) {
			next = !next || c->deadline_ns < next ? c->deadline_ns : next;
			continue;
		}
		if (c->waiter) {
			*c->waiter = -ETIMEDOUT;
			c->waiter = NULL;
			pthread_cond_broadcast(&v->cond);
		}
		vsock__conn_reset(v, c);
		(void)conn_check(v, c);
	}
	return next;
}

void vsock__drop_all(struct vsock *v)
{
	for (uint32_t i = 0; i < v->cfg.max_conns; i++)
		if (v->conns[i].state != VC_FREE)
			conn_release(v, &v->conns[i], -ECONNRESET);
	v->sendq_head = v->sendq_tail = NULL;
	v->norphans = 0;
	__atomic_store_n(&v->next_deadline, 0, __ATOMIC_RELAXED);
}

/* --- packets from the guest on a known connection. */

int vsock__conn_request(struct vsock *v, const struct vsock_hdr *h)
{
	const struct vsock_listener *l = vsock__listener(v, h->dst_port);
	struct vsock_conn *c = l ? vsock__conn_new(v, h->dst_port, h->src_port) : NULL;
	if (!l)
		return -ECONNREFUSED;
	if (!c)
		return -EMFILE;
	c->state = VC_ESTABLISHED;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->ctl = VC_CTL_RESPONSE;
	sendq_add(v, c);
	int fd = c->user_fd;
	c->user_fd = -1;
	l->fn(l->arg, fd, h->src_port, h->dst_port);
	return 0;
}

static void on_shutdown(struct vsock *v, struct vsock_conn *c, uint32_t flags)
{
	c->guest_shut |= flags & SHUT_BOTH;
	if (c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_RCV)
		vsock__conn_shut_rd(c);         /* caller's writes now fail */
	if (c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_SEND)
		conn_flush(v, c);               /* EOF for the caller once drained */
	if (c->guest_shut == SHUT_BOTH) {
		/* The guest closed and waits for our RST; we keep draining. */
		c->guest_done = true;
		c->ctl = VC_CTL_RST;
		c->deadline_ns = 0;
	}
}

static void on_rw(struct vsock *v, struct vsock_conn *c, const struct virtq_elem *e, uint32_t len)
{
	if (c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_SEND) {
		vsock__conn_reset(v, c);        /* data after its own SHUTDOWN */
		return;
	}
	if (c->host_gone) {                     /* nobody to read it: consume */
		c->rx_cnt += len;
		c->fwd_cnt += len;
	} else if ((uint64_t)c->len + len > c->buf_alloc) {
		v->stats.credit_violations++;
		vsock__conn_reset(v, c);
		return;
	} else {
		c->rx_cnt += len;
		if (vsock__conn_from_guest(v, c, e, VSOCK_HDR_LEN, len) < 0) {
			vsock__conn_reset(v, c);
			return;
		}
	}
	conn_flush(v, c);               /* ring first, then credit */
}

void vsock__conn_pkt(struct vsock *v, struct vsock_conn *c, const struct vsock_hdr *h,
		     const struct virtq_elem *e)
{
	c->peer_buf_alloc = h->buf_alloc;       /* every packet carries credit */
	c->peer_fwd_cnt = h->fwd_cnt;
	c->credit_requested = false;
	if (c->state == VC_CONNECTING && h->op != VIRTIO_VSOCK_OP_RESPONSE && h->op != VIRTIO_VSOCK_OP_RST)
		vsock__conn_reset(v, c);        /* anything else is a protocol error */
	else switch (h->op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		if (c->state != VC_CONNECTING) {
			vsock__conn_reset(v, c);
			break;
		}
		c->state = VC_ESTABLISHED;
		c->deadline_ns = 0;
		if (c->waiter) {
			*c->waiter = 0;
			c->waiter = NULL;
			pthread_cond_broadcast(&v->cond);
		}
		break;
	case VIRTIO_VSOCK_OP_RST:
		c->guest_done = true;
		c->ctl = 0;
		c->deadline_ns = 0;
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:       on_shutdown(v, c, h->flags); break;
	case VIRTIO_VSOCK_OP_RW:             on_rw(v, c, e, h->len); break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:  break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST: c->ctl |= VC_CTL_CREDIT_UPDATE; break;
	default:                             vsock__conn_reset(v, c); break;  /* a second REQUEST */
	}
	vsock__conn_sent(v, c);
}

/* --- packets to the guest. */

bool vsock__conn_next(struct vsock *v, struct vsock_conn *c, const struct virtq_elem *e,
		      struct vsock_hdr *out)
{
	struct vsock_hdr h = { .src_cid = VSOCK_HOST_CID, .src_port = c->host_port,
			       .dst_port = c->guest_port };
	uint64_t room = e->in_len - VSOCK_HDR_LEN;

	if (c->ctl & VC_CTL_RST) {
		h.op = VIRTIO_VSOCK_OP_RST;
		c->ctl = 0;
	} else if (c->ctl & (VC_CTL_REQUEST | VC_CTL_RESPONSE)) {
		h.op = c->ctl & VC_CTL_REQUEST ? VIRTIO_VSOCK_OP_REQUEST : VIRTIO_VSOCK_OP_RESPONSE;
		c->ctl &= ~(VC_CTL_REQUEST | VC_CTL_RESPONSE);
	} else if (room && can_send_data(c)) {
		struct iovec iov[64];
		size_t total;
		uint32_t credit = peer_credit(c);
		if (room > credit)
			room = credit;
		if (room > VSOCK_MAX_PAYLOAD)
			room = VSOCK_MAX_PAYLOAD;
		int n = virtq_elem_slice(e, true, VSOCK_HDR_LEN, room, iov, 64, &total);
		ssize_t r = vsock__conn_read(c, iov, n);
		if (r > 0) {
			h.op = VIRTIO_VSOCK_OP_RW;
			h.len = (uint32_t)r;
			c->tx_cnt += (uint32_t)r;
		} else if (r == 0) {
			host_shutdown(v, c, VIRTIO_VSOCK_SHUTDOWN_SEND |
					    (c->host_gone ? VIRTIO_VSOCK_SHUTDOWN_RCV : 0));
		}
	}
	if (!h.op && (c->ctl & VC_CTL_SHUTDOWN)) {
		h.op = VIRTIO_VSOCK_OP_SHUTDOWN;
		h.flags = c->host_shut;
		c->ctl &= ~VC_CTL_SHUTDOWN;
	} else if (!h.op && (c->ctl & VC_CTL_CREDIT_UPDATE)) {
		h.op = VIRTIO_VSOCK_OP_CREDIT_UPDATE;
	} else if (!h.op && (c->ctl & VC_CTL_CREDIT_REQUEST)) {
		h.op = VIRTIO_VSOCK_OP_CREDIT_REQUEST;
		c->ctl &= ~VC_CTL_CREDIT_REQUEST;
	}
	if (!h.op)
		return false;
	if (h.op == VIRTIO_VSOCK_OP_RST)
		c->guest_done = true;
	h.buf_alloc = c->buf_alloc;             /* every packet carries credit */
	h.fwd_cnt = c->fwd_cnt;
	c->adv_fwd_cnt = c->fwd_cnt;
	c->ctl &= ~VC_CTL_CREDIT_UPDATE;
	*out = h;
	return true;
}

void vsock__conn_sent(struct vsock *v, struct vsock_conn *c)
{
	if (!conn_check(v, c))
		conn_update(v, c);
}

