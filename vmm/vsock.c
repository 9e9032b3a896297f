/* vsock.c — virtio-vsock device: the queues, packet validation and building. */
#include "vmm/vsock.h"

#include <endian.h>
#include <errno.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_vsock.h>
#include <string.h>

static uint64_t ld64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }
static uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static void st64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static void st32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void st16(uint8_t *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }

void vsock_hdr_decode(struct vsock_hdr *h, const uint8_t r[VSOCK_HDR_LEN])
{
	h->src_cid = ld64(r);
	h->dst_cid = ld64(r + 8);
	h->src_port = ld32(r + 16);
	h->dst_port = ld32(r + 20);
	h->len = ld32(r + 24);
	h->type = ld16(r + 28);
	h->op = ld16(r + 30);
	h->flags = ld32(r + 32);
	h->buf_alloc = ld32(r + 36);
	h->fwd_cnt = ld32(r + 40);
}

void vsock_hdr_encode(uint8_t r[VSOCK_HDR_LEN], const struct vsock_hdr *h)
{
	st64(r, h->src_cid);
	st64(r + 8, h->dst_cid);
	st32(r + 16, h->src_port);
	st32(r + 20, h->dst_port);
	st32(r + 24, h->len);
	st16(r + 28, h->type);
	st16(r + 30, h->op);
	st32(r + 32, h->flags);
	st32(r + 36, h->buf_alloc);
	st32(r + 40, h->fwd_cnt);
}

/* --- guest -> device (tx queue). */

static void orphan_rst(struct vsock *v, const struct vsock_hdr *h)
{
	if (h->op == VIRTIO_VSOCK_OP_RST)
		return;                 /* never answer an RST */
	v->stats.rst_unknown++;
	if (v->norphans == VSOCK_MAX_ORPHANS) {
		v->stats.orphan_overflow++;
		return;
	}
	struct vsock_orphan *o = &v->orphans[(v->orphan_head + v->norphans++) % VSOCK_MAX_ORPHANS];
	o->src_cid = h->dst_cid;
	o->src_port = h->dst_port;
	o->dst_port = h->src_port;
}

static void reject(struct vsock *v, struct vsock_conn *c, const struct vsock_hdr *h)
{
	if (c)
		vsock__conn_reset(v, c);
	else
		orphan_rst(v, h);
}

static void handle_pkt(struct vsock *v, const struct virtq_elem *e)
{
	uint8_t raw[VSOCK_HDR_LEN];
	struct vsock_hdr h;

	if (virtq_elem_read(e, 0, raw, sizeof(raw)) != sizeof(raw)) {
		v->stats.drop_short++;
		return;
	}
	vsock_hdr_decode(&h, raw);
	v->stats.tx_pkts++;
	if (h.src_cid != v->guest_cid) {        /* spoofed: no answer */
		v->stats.drop_bad_cid++;
		return;
	}
	if (h.dst_cid != VSOCK_HOST_CID) {
		v->stats.drop_bad_cid++;
		orphan_rst(v, &h);
		return;
	}
	if (h.type != VIRTIO_VSOCK_TYPE_STREAM) {
		v->stats.drop_bad_type++;
		orphan_rst(v, &h);
		return;
	}
	struct vsock_conn *c = vsock__conn_lookup(v, h.dst_port, h.src_port);
	if (h.len > VSOCK_MAX_PAYLOAD || h.len > e->out_len - VSOCK_HDR_LEN) {
		v->stats.drop_bad_len++;
		reject(v, c, &h);
		return;
	}
	if (h.op < VIRTIO_VSOCK_OP_REQUEST || h.op > VIRTIO_VSOCK_OP_CREDIT_REQUEST) {
		v->stats.drop_bad_op++;
		reject(v, c, &h);
		return;
	}
	if (c)
		vsock__conn_pkt(v, c, &h, e);
	else if (h.op != VIRTIO_VSOCK_OP_REQUEST || vsock__conn_request(v, &h) < 0)
		orphan_rst(v, &h);
}

static void ring_error(struct vsock *v)
{
	v->stats.ring_errors++;
	virtio_mmio_set_needs_reset(&v->mmio);
}

static void process_tx(struct vsock *v)
{
	struct virtq *q = virtio_mmio_queue(&v->mmio, VSOCK_TXQ);

	for (int budget = VSOCK_BUDGET; q; budget--) {
		if (budget == 0) {
			virtio_mmio_kick(&v->mmio, VSOCK_TXQ);  /* come back later */
			break;
		}
		int r = virtq_pop(q, &v->elem);
		if (r < 0)
			ring_error(v);
		if (r <= 0)
			break;
		handle_pkt(v, &v->elem);
		virtq_push(q, &v->elem, 0);
	}
	virtio_mmio_notify_used(&v->mmio, VSOCK_TXQ);
}

/* --- device -> guest (rx queue). */

static uint32_t put_hdr(struct vsock *v, struct virtq_elem *e, struct vsock_hdr *h)
{
	uint8_t raw[VSOCK_HDR_LEN];
	h->dst_cid = v->guest_cid;
	h->type = VIRTIO_VSOCK_TYPE_STREAM;
	vsock_hdr_encode(raw, h);
	virtq_elem_write(e, 0, raw, sizeof(raw));
	v->stats.rx_pkts++;
	if (h->op == VIRTIO_VSOCK_OP_RST)
		v->stats.rst_sent++;
	return VSOCK_HDR_LEN + h->len;
}

static uint32_t orphan_build(struct vsock *v, struct virtq_elem *e)
{
	struct vsock_orphan *o = &v->orphans[v->orphan_head];
	struct vsock_hdr h = {
		.src_cid = o->src_cid, .src_port = o->src_port, .dst_port = o->dst_port,
		.op = VIRTIO_VSOCK_OP_RST,
	};
	v->orphan_head = (v->orphan_head + 1) % VSOCK_MAX_ORPHANS;
	v->norphans--;
	return put_hdr(v, e, &h);
}

void vsock__fill_rx(struct vsock *v)
{
	struct virtq *q = virtio_mmio_queue(&v->mmio, VSOCK_RXQ);
	struct virtq_elem *e = &v->elem;

	for (int budget = VSOCK_BUDGET; q && (v->norphans || v->sendq_head); budget--) {
		if (budget == 0) {
			virtio_mmio_kick(&v->mmio, VSOCK_RXQ);
			break;
		}
		int r = virtq_pop(q, e);
		if (r < 0)
			ring_error(v);
		if (r <= 0)
			break;
		if (e->in_len < VSOCK_HDR_LEN) {
			v->stats.rx_bad_buf++;
			virtq_push(q, e, 0);
			continue;
		}
		uint32_t n = v->norphans ? orphan_build(v, e) : 0;
		/* Each queued connection gets one try, round robin. */
		for (uint32_t tries = v->nconns; !n && tries && v->sendq_head; tries--) {
			struct vsock_conn *c = vsock__sendq_pop(v);
			struct vsock_hdr h;
			if (vsock__conn_next(v, c, e, &h))
				n = put_hdr(v, e, &h);
			vsock__conn_sent(v, c);         /* may free c */
		}
		if (!n && e->in_len > VSOCK_HDR_LEN) {
			virtq_unpop(q);         /* nothing to say now: keep the buffer */
			break;
		}
		if (!n)
			v->stats.rx_bad_buf++;  /* header-only buffer, no control packet */
		virtq_push(q, e, n);
	}
	virtio_mmio_notify_used(&v->mmio, VSOCK_RXQ);
}

void vsock__transport_reset(struct vsock *v)
{
	struct virtq *q = virtio_mmio_queue(&v->mmio, VSOCK_EVQ);
	uint8_t ev[4] = { 0 };          /* VIRTIO_VSOCK_EVENT_TRANSPORT_RESET */

	vsock__drop_all(v);
	int r = q ? virtq_pop(q, &v->elem) : 0;
	if (r < 0)
		ring_error(v);
	if (r <= 0)
		return;
	st32(ev, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	virtq_push(q, &v->elem, (uint32_t)virtq_elem_write(&v->elem, 0, ev, sizeof(ev)));
	virtio_mmio_notify_used(&v->mmio, VSOCK_EVQ);
}

/* --- virtio device ops (transport lock held). */

static void cfg_read(void *opaque, uint32_t off, uint8_t *data, uint32_t len)
{
	uint8_t cfg[8];
	st64(cfg, ((struct vsock *)opaque)->guest_cid);
	memcpy(data, cfg + off, len);   /* clipped to config_len by the transport */
}

static void queue_notify(void *opaque, uint16_t qidx)
{
	struct vsock *v = opaque;
	if (qidx == VSOCK_TXQ)
		process_tx(v);
	vsock__fill_rx(v);              /* new rx buffers, or replies to tx */
}

static void dev_reset(void *opaque)
{
	vsock__drop_all(opaque);
}

int vsock__dev_init(struct vsock *v, const struct vmm_mem *mem, uint64_t base, int gsi, int vmfd)
{
	v->ops = (struct virtio_dev_ops){
		.device_id = VIRTIO_ID_VSOCK,
		.num_queues = VSOCK_NUM_QUEUES,
		.queue_max = VSOCK_QUEUE_SIZE,
		.config_len = 8,
		.config_read = cfg_read,
		.queue_notify = queue_notify,
		.reset = dev_reset,
	};
	return virtio_mmio_init(&v->mmio, mem, base, gsi, vmfd, &v->ops, v);
}
