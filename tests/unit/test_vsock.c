/* test_vsock.c — the virtio-vsock device driven by a fake guest driver:
 * rings in guest memory, MMIO register writes, rx buffers, packets; the host
 * side through the vsock_host API.  No KVM.  Most tests drive the device
 * loop synchronously with vsock_host_poll(); one runs the device thread. */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/fake_driver.h"
#include "tests/unit/ut.h"
#include "vmm/vsock.h"

#define BASE      0xd0000000ull
#define GCID      3
#define QN        256
#define NRX       128
#define NTX       64
#define RXDATA    4096
#define RING(q)   (0x10000ull + (uint64_t)(q) * 0x4000)
#define RXHDR(i)  (0x100000ull + (uint64_t)(i) * 0x2000)
#define RXDAT(i)  (RXHDR(i) + 0x100)
#define TXBUF(k)  (0x400000ull + (uint64_t)(k) * 0x11000)
#define EVBUF     0x3f0000ull
#define F(b)      (1ull << (b))
#define FEAT_ALL  (F(VIRTIO_F_VERSION_1) | F(VIRTIO_RING_F_EVENT_IDX) | F(VIRTIO_RING_F_INDIRECT_DESC))

/* ---- the fake guest driver ---- */

struct fg {
	struct vmm_mem mem;
	struct vsock *v;
	struct virtio_mmio_dev *d;
	uint16_t avail[3], used_seen[3];
	uint64_t features;
	bool threaded;
};

struct pkt {
	struct vsock_hdr h;
	uint32_t used_len;
	uint8_t data[RXDATA];
};

static uint32_t mr(struct fg *g, uint32_t off)
{
	uint32_t v;
	virtio_mmio_access(g->d, BASE + off, (uint8_t *)&v, 4, false);
	return le32toh(v);
}

static void mw(struct fg *g, uint32_t off, uint32_t v)
{
	v = htole32(v);
	virtio_mmio_access(g->d, BASE + off, (uint8_t *)&v, 4, true);
}

static void *gp(struct fg *g, uint64_t gpa, uint64_t len)
{
	void *p = vmm_mem_ptr(&g->mem, gpa, len);
	UT_ASSERT(p);
	return p;
}

static void desc(struct fg *g, int q, uint16_t i, uint64_t addr, uint32_t len, uint16_t fl, uint16_t next)
{
	uint8_t *d = gp(g, RING(q) + 16u * i, 16);
	fake_desc_write(d, addr, len, fl, next);
}

static uint16_t *avail_ring(struct fg *g, int q) { return gp(g, RING(q) + 0x1000, 6 + 2 * QN); }
static uint8_t *used_ring(struct fg *g, int q) { return gp(g, RING(q) + 0x2000, 6 + 8 * QN); }

static void post(struct fg *g, int q, uint16_t head)
{
	uint16_t *a = avail_ring(g, q);
	a[2 + g->avail[q] % QN] = htole16(head);
	g->avail[q]++;
	__atomic_store_n(&a[1], htole16(g->avail[q]), __ATOMIC_RELEASE);
}

static uint16_t used_idx(struct fg *g, int q)
{
	return le16toh(__atomic_load_n((uint16_t *)(used_ring(g, q) + 2), __ATOMIC_ACQUIRE));
}

static void pump(struct fg *g)
{
	for (int i = 0; i < 4 && !g->threaded; i++)
		UT_ASSERT(vsock_host_poll(g->v, 0) >= 0);
}

static void driver_init(struct fg *g)
{
	memset(g->avail, 0, sizeof(g->avail));
	memset(g->used_seen, 0, sizeof(g->used_seen));
	mw(g, VIRTIO_MMIO_STATUS, 0);
	mw(g, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	for (uint32_t sel = 0; sel < 2; sel++) {
		mw(g, VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
		mw(g, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(g->features >> (32 * sel)));
	}
	mw(g, VIRTIO_MMIO_STATUS, mr(g, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_FEATURES_OK);
	UT_ASSERT(mr(g, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	for (uint32_t q = 0; q < 3; q++) {
		memset(gp(g, RING(q), 0x3000), 0, 0x3000);
		mw(g, VIRTIO_MMIO_QUEUE_SEL, q);
		UT_EQ(mr(g, VIRTIO_MMIO_QUEUE_NUM_MAX), QN);
		mw(g, VIRTIO_MMIO_QUEUE_NUM, QN);
		mw(g, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)RING(q));
		mw(g, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)RING(q) + 0x1000);
		mw(g, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)RING(q) + 0x2000);
		mw(g, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	mw(g, VIRTIO_MMIO_STATUS, mr(g, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_DRIVER_OK);
	for (uint16_t i = 0; i < NRX; i++) {    /* header + data, like Linux 6.1 */
		desc(g, 0, 2 * i, RXHDR(i), VSOCK_HDR_LEN, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2 * i + 1);
		desc(g, 0, 2 * i + 1, RXDAT(i), RXDATA, VRING_DESC_F_WRITE, 0);
		post(g, 0, 2 * i);
	}
	desc(g, 2, 0, EVBUF, 8, VRING_DESC_F_WRITE, 0);
	post(g, 2, 0);
	mw(g, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	pump(g);
}

static void fg_init(struct fg *g, const struct vsock_host_config *cfg)
{
	memset(g, 0, sizeof(*g));
	UT_EQ(vmm_mem_init(&g->mem, 32 << 20), 0);
	UT_EQ(vsock_host_create(&g->v, &g->mem, BASE, 5, -1, GCID, cfg), 0);
	g->d = vsock_host_mmio(g->v);
	g->features = FEAT_ALL;
	driver_init(g);
}

static void fg_fini(struct fg *g)
{
	vsock_host_release(g->v);
	vmm_mem_release(&g->mem);
}

/* Post one tx packet: header descriptor, payload descriptor. */
static void tx_hdr(struct fg *g, const struct vsock_hdr *h, const void *data, uint32_t len)
{
	while ((uint16_t)(g->avail[1] - used_idx(g, 1)) >= NTX)
		pump(g);
	uint16_t k = g->avail[1] % NTX;
	vsock_hdr_encode(gp(g, TXBUF(k), VSOCK_HDR_LEN), h);
	if (len)
		memcpy(gp(g, TXBUF(k) + 0x100, len), data, len);
	desc(g, 1, 2 * k, TXBUF(k), VSOCK_HDR_LEN, len ? VRING_DESC_F_NEXT : 0, 2 * k + 1);
	desc(g, 1, 2 * k + 1, TXBUF(k) + 0x100, len, 0, 0);
	post(g, 1, 2 * k);
	mw(g, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	pump(g);
}

static void tx(struct fg *g, uint16_t op, uint32_t sport, uint32_t dport, uint32_t flags,
	       uint32_t buf_alloc, uint32_t fwd_cnt, const void *data, uint32_t len)
{
	struct vsock_hdr h = {
		.src_cid = GCID, .dst_cid = VSOCK_HOST_CID, .src_port = sport, .dst_port = dport,
		.len = len, .type = VIRTIO_VSOCK_TYPE_STREAM, .op = op, .flags = flags,
		.buf_alloc = buf_alloc, .fwd_cnt = fwd_cnt,
	};
	tx_hdr(g, &h, data, len);
}

static bool rx(struct fg *g, struct pkt *p)
{
	uint16_t idx = used_idx(g, 0);
	if (idx == g->used_seen[0]) {
		/* EVENT_IDX: interrupt me on the next used entry. */
		__atomic_store_n(&avail_ring(g, 0)[2 + QN], htole16(g->used_seen[0]), __ATOMIC_SEQ_CST);
		return false;
	}
	uint8_t *u = used_ring(g, 0) + 4 + 8 * (g->used_seen[0] % QN);
	uint32_t id = le32toh(*(uint32_t *)u), len = le32toh(*(uint32_t *)(u + 4));
	g->used_seen[0]++;
	UT_ASSERT(id % 2 == 0 && id / 2 < NRX);
	UT_ASSERT(len >= VSOCK_HDR_LEN && len <= VSOCK_HDR_LEN + RXDATA);
	vsock_hdr_decode(&p->h, gp(g, RXHDR(id / 2), VSOCK_HDR_LEN));
	p->used_len = len;
	UT_EQ(p->h.len, len - VSOCK_HDR_LEN);
	memcpy(p->data, gp(g, RXDAT(id / 2), RXDATA), len - VSOCK_HDR_LEN);
	UT_EQ(p->h.dst_cid, GCID);
	UT_EQ(p->h.type, VIRTIO_VSOCK_TYPE_STREAM);
	post(g, 0, (uint16_t)id);
	mw(g, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	return true;
}

static bool rx_wait(struct fg *g, struct pkt *p)
{
	for (int i = 0; i < 2000; i++) {
		if (rx(g, p))
			return true;
		if (g->threaded) {
			struct pollfd pf = { .fd = virtio_mmio_irq_fd(g->d), .events = POLLIN };
			uint64_t x;
			if (poll(&pf, 1, 5) == 1)
				(void)!read(pf.fd, &x, sizeof(x));
			mw(g, VIRTIO_MMIO_INTERRUPT_ACK, mr(g, VIRTIO_MMIO_INTERRUPT_STATUS));
		} else {
			pump(g);
		}
	}
	return false;
}

static void expect(struct fg *g, struct pkt *p, uint16_t op, uint32_t sport, uint32_t dport)
{
	if (!rx_wait(g, p))
		UT_FAIL("no packet, expected op %u", op);
	if (p->h.op != op || p->h.src_port != sport || p->h.dst_port != dport ||
	    p->h.src_cid != VSOCK_HOST_CID)
		UT_FAIL("got op %u %u->%u, expected op %u %u->%u", p->h.op, p->h.src_port,
			p->h.dst_port, op, sport, dport);
}

static void expect_none(struct fg *g)
{
	struct pkt p;
	pump(g);
	if (rx(g, &p))
		UT_FAIL("unexpected packet op %u %u->%u", p.h.op, p.h.src_port, p.h.dst_port);
}

/* ---- host side helpers ---- */

struct acc { int n; int fd[64]; uint32_t gport[64]; };

static void on_accept(void *arg, int fd, uint32_t gport, uint32_t hport)
{
	struct acc *a = arg;
	UT_ASSERT(a->n < 64);
	a->fd[a->n] = fd;
	a->gport[a->n++] = gport;
}

static ssize_t hread(int fd, void *buf, size_t n)
{
	return recv(fd, buf, n, MSG_DONTWAIT);
}

static uint8_t pat(uint32_t stream, uint64_t off)
{
	return (uint8_t)(off * 131 + stream * 7 + (off >> 9));
}

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

#define FNV0 0xcbf29ce484222325ull

/* Guest opens guest_port -> host_port and gets the RESPONSE. */
static void guest_connect(struct fg *g, uint32_t gport, uint32_t hport, uint32_t buf_alloc, struct pkt *p)
{
	tx(g, VIRTIO_VSOCK_OP_REQUEST, gport, hport, 0, buf_alloc, 0, NULL, 0);
	expect(g, p, VIRTIO_VSOCK_OP_RESPONSE, hport, gport);
}

static struct vsock_conn *find_conn(struct fg *g, uint32_t gport)
{
	for (uint32_t i = 0; i < g->v->cfg.max_conns; i++)
		if (g->v->conns[i].state != VC_FREE && g->v->conns[i].guest_port == gport)
			return &g->v->conns[i];
	return NULL;
}

/* ---- tests ---- */

UT_TEST(vsock_config_and_identity)
{
	struct fg g;
	fg_init(&g, NULL);
	UT_EQ(mr(&g, VIRTIO_MMIO_DEVICE_ID), 19);
	UT_EQ(mr(&g, 0x100), GCID);
	UT_EQ(mr(&g, 0x104), 0);
	uint64_t cid = 0;
	virtio_mmio_access(g.d, BASE + 0x100, (uint8_t *)&cid, 8, false);
	UT_EQ(le64toh(cid), GCID);
	uint32_t st = mr(&g, VIRTIO_MMIO_STATUS);
	UT_ASSERT(st & VIRTIO_CONFIG_S_DRIVER_OK);
	UT_ASSERT(!(st & VIRTIO_CONFIG_S_NEEDS_RESET));
	struct vsock *v2;
	UT_EQ(vsock_host_create(&v2, &g.mem, BASE, 5, -1, 2, NULL), -EINVAL);  /* host CID */
	struct vsock_host_config bad = { .conn_buf_bytes = 100 };
	UT_EQ(vsock_host_create(&v2, &g.mem, BASE, 5, -1, 3, &bad), -EINVAL);
	fg_fini(&g);
}

static void connect_data_shutdown(uint64_t features)
{
	struct fg g;
	struct acc a = { 0 };
	struct pkt p;
	char buf[64];

	fg_init(&g, NULL);
	g.features = features;
	driver_init(&g);                                /* renegotiate */
	UT_EQ(vsock_host_listen(g.v, 1234, on_accept, &a), 0);
	UT_EQ(vsock_host_listen(g.v, 1234, on_accept, &a), -EADDRINUSE);
	guest_connect(&g, 5000, 1234, 65536, &p);
	UT_EQ(p.h.buf_alloc, 256 * 1024);
	UT_EQ(p.h.fwd_cnt, 0);
	UT_EQ(a.n, 1);
	UT_EQ(a.gport[0], 5000);
	tx(&g, VIRTIO_VSOCK_OP_RW, 5000, 1234, 0, 65536, 0, "guest->host", 11);
	UT_EQ(hread(a.fd[0], buf, sizeof(buf)), 11);
	UT_ASSERT(memcmp(buf, "guest->host", 11) == 0);
	UT_EQ(write(a.fd[0], "host->guest!", 12), 12);
	expect(&g, &p, VIRTIO_VSOCK_OP_RW, 1234, 5000);
	UT_EQ(p.h.len, 12);
	UT_ASSERT(memcmp(p.data, "host->guest!", 12) == 0);
	UT_EQ(p.h.fwd_cnt, 11);                         /* credit rides on every packet */
	tx(&g, VIRTIO_VSOCK_OP_SHUTDOWN, 5000, 1234, 3, 65536, 12, NULL, 0);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, 1234, 5000);
	UT_EQ(hread(a.fd[0], buf, sizeof(buf)), 0);     /* EOF */
	UT_EQ(vsock_host_nconns(g.v), 0);
	expect_none(&g);
	struct vsock_stats s;
	vsock_host_stats(g.v, &s);
	UT_EQ(s.drop_bad_cid + s.drop_bad_len + s.drop_bad_op + s.drop_short + s.rst_unknown, 0);
	close(a.fd[0]);
	fg_fini(&g);
}

UT_TEST(vsock_guest_connect_data_shutdown)
{
	connect_data_shutdown(FEAT_ALL);
}

UT_TEST(vsock_guest_connect_data_shutdown_no_event_idx)
{
	connect_data_shutdown(F(VIRTIO_F_VERSION_1));
}

UT_TEST(vsock_host_connect_data_close)
{
	struct fg g;
	struct pkt p;
	char buf[64];
	int fd;

	fg_init(&g, NULL);
	UT_EQ(vsock_host_connect(g.v, 80, &fd), 0);
	UT_EQ(write(fd, "early", 5), 5);                /* waits for RESPONSE */
	UT_ASSERT(rx_wait(&g, &p));
	UT_EQ(p.h.op, VIRTIO_VSOCK_OP_REQUEST);
	UT_EQ(p.h.dst_port, 80);
	uint32_t hport = p.h.src_port;
	UT_ASSERT(hport >= 49152);
	expect_none(&g);
	tx(&g, VIRTIO_VSOCK_OP_RESPONSE, 80, hport, 0, 65536, 0, NULL, 0);
	expect(&g, &p, VIRTIO_VSOCK_OP_RW, hport, 80);
	UT_EQ(p.h.len, 5);
	tx(&g, VIRTIO_VSOCK_OP_RW, 80, hport, 0, 65536, 5, "reply", 5);
	UT_EQ(hread(fd, buf, sizeof(buf)), 5);
	/* Host half-close: the guest sees SHUTDOWN(SEND) and may still send. */
	UT_EQ(shutdown(fd, SHUT_WR), 0);
	expect(&g, &p, VIRTIO_VSOCK_OP_SHUTDOWN, hport, 80);
	UT_EQ(p.h.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
	tx(&g, VIRTIO_VSOCK_OP_RW, 80, hport, 0, 65536, 5, "more", 4);
	UT_EQ(hread(fd, buf, sizeof(buf)), 4);
	close(fd);                                      /* full close */
	expect(&g, &p, VIRTIO_VSOCK_OP_SHUTDOWN, hport, 80);
	UT_EQ(p.h.flags, 3);
	tx(&g, VIRTIO_VSOCK_OP_RST, 80, hport, 0, 65536, 5, NULL, 0);
	pump(&g);
	UT_EQ(vsock_host_nconns(g.v), 0);
	expect_none(&g);
	fg_fini(&g);
}

UT_TEST(vsock_guest_half_close)
{
	struct fg g;
	struct acc a = { 0 };
	struct pkt p;
	char buf[16];
	fg_init(&g, NULL);
	UT_EQ(vsock_host_listen(g.v, 9, on_accept, &a), 0);
	guest_connect(&g, 4000, 9, 65536, &p);
	tx(&g, VIRTIO_VSOCK_OP_RW, 4000, 9, 0, 65536, 0, "abc", 3);
	tx(&g, VIRTIO_VSOCK_OP_SHUTDOWN, 4000, 9, VIRTIO_VSOCK_SHUTDOWN_SEND, 65536, 0, NULL, 0);
	UT_EQ(hread(a.fd[0], buf, sizeof(buf)), 3);
	UT_EQ(hread(a.fd[0], buf, sizeof(buf)), 0);     /* EOF after the bytes */
	UT_EQ(write(a.fd[0], "xy", 2), 2);              /* other direction open */
	expect(&g, &p, VIRTIO_VSOCK_OP_RW, 9, 4000);
	UT_EQ(p.h.len, 2);
	/* Data after its own SHUTDOWN(SEND) is a protocol error: RST. */
	tx(&g, VIRTIO_VSOCK_OP_RW, 4000, 9, 0, 65536, 2, "zz", 2);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, 9, 4000);
	close(a.fd[0]);
	fg_fini(&g);
}

UT_TEST(vsock_guest_rcv_shutdown_then_host_close)
{
	struct fg g;
	struct acc a = { 0 };
	struct pkt p;
	fg_init(&g, NULL);
	UT_EQ(vsock_host_listen(g.v, 12, on_accept, &a), 0);
	guest_connect(&g, 4100, 12, 65536, &p);
	tx(&g, VIRTIO_VSOCK_OP_SHUTDOWN, 4100, 12, VIRTIO_VSOCK_SHUTDOWN_RCV, 65536, 0, NULL, 0);
	UT_EQ(send(a.fd[0], "x", 1, MSG_NOSIGNAL), -1);  /* the guest reads no more */
	UT_EQ(errno, EPIPE);
	tx(&g, VIRTIO_VSOCK_OP_RW, 4100, 12, 0, 65536, 0, "still", 5);
	char buf[8];
	UT_EQ(hread(a.fd[0], buf, sizeof(buf)), 5);     /* other direction open */
	close(a.fd[0]);
	expect(&g, &p, VIRTIO_VSOCK_OP_SHUTDOWN, 12, 4100);
	UT_EQ(p.h.flags, 3);                            /* closing both ways */
	tx(&g, VIRTIO_VSOCK_OP_RST, 4100, 12, 0, 65536, 0, NULL, 0);
	pump(&g);
	UT_EQ(vsock_host_nconns(g.v), 0);
	expect_none(&g);
	fg_fini(&g);
}

UT_TEST(vsock_connect_refused_and_unknown_ports)
{
	struct fg g;
	struct pkt p;
	char buf[8];
	int fd;
	fg_init(&g, NULL);
	UT_EQ(vsock_host_connect(g.v, 81, &fd), 0);
	UT_ASSERT(rx_wait(&g, &p));
	UT_EQ(p.h.op, VIRTIO_VSOCK_OP_REQUEST);
	tx(&g, VIRTIO_VSOCK_OP_RST, 81, p.h.src_port, 0, 0, 0, NULL, 0);
	UT_EQ(hread(fd, buf, sizeof(buf)), 0);          /* refusal = EOF */
	UT_EQ(send(fd, "x", 1, MSG_NOSIGNAL), -1);
	UT_EQ(errno, EPIPE);
	close(fd);
	UT_EQ(vsock_host_nconns(g.v), 0);
	/* REQUEST to a port nobody listens on: RST, ports swapped. */
	tx(&g, VIRTIO_VSOCK_OP_REQUEST, 7777, 999, 0, 65536, 0, NULL, 0);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, 999, 7777);
	/* Data or shutdown for no connection: RST.  RST for none: silence. */
	tx(&g, VIRTIO_VSOCK_OP_RW, 7778, 998, 0, 65536, 0, "x", 1);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, 998, 7778);
	tx(&g, VIRTIO_VSOCK_OP_RST, 7779, 997, 0, 65536, 0, NULL, 0);
	expect_none(&g);
	struct vsock_stats s;
	vsock_host_stats(g.v, &s);
	UT_EQ(s.rst_unknown, 2);
	fg_fini(&g);
}

UT_TEST(vsock_16_interleaved_connections)
{
	enum { N = 16, ROUNDS = 40 };
	struct fg g;
	struct acc a = { 0 };
	struct pkt p;
	uint64_t g_sent_h[N], g_sent_n[N], h_recv_h[N], h_recv_n[N];
	uint64_t h_sent_h[N], h_sent_n[N], g_recv_h[N], g_recv_n[N];
	int fdof[N];
	uint8_t chunk[3000];

	fg_init(&g, NULL);
	UT_EQ(vsock_host_listen(g.v, 2000, on_accept, &a), 0);
	for (int i = 0; i < N; i++) {
		guest_connect(&g, 6000 + i, 2000, 1 << 20, &p);
		g_sent_h[i] = h_recv_h[i] = h_sent_h[i] = g_recv_h[i] = FNV0;
		g_sent_n[i] = h_recv_n[i] = h_sent_n[i] = g_recv_n[i] = 0;
	}
	UT_EQ(a.n, N);
	for (int i = 0; i < N; i++)
		fdof[a.gport[i] - 6000] = a.fd[i];
	for (int r = 0; r <= ROUNDS; r++) {
		for (int i = 0; i < N && r < ROUNDS; i++) {
			uint32_t len = 1 + (uint32_t)(r * 37 + i * 101) % 3000;
			for (uint32_t j = 0; j < len; j++)
				chunk[j] = pat((uint32_t)i, g_sent_n[i] + j);
			tx(&g, VIRTIO_VSOCK_OP_RW, 6000 + i, 2000, 0, 1 << 20, 0, chunk, len);
			g_sent_h[i] = fnv(g_sent_h[i], chunk, len);
			g_sent_n[i] += len;
			len = 1 + (uint32_t)(r * 53 + i * 17) % 2500;
			for (uint32_t j = 0; j < len; j++)
				chunk[j] = pat((uint32_t)i + 100, h_sent_n[i] + j);
			UT_EQ(write(fdof[i], chunk, len), len);
			h_sent_h[i] = fnv(h_sent_h[i], chunk, len);
			h_sent_n[i] += len;
		}
		for (int spin = 0; spin < (r == ROUNDS ? 50 : 1); spin++) {
			pump(&g);
			while (rx(&g, &p)) {
				UT_EQ(p.h.op, VIRTIO_VSOCK_OP_RW);
				int i = (int)p.h.dst_port - 6000;
				UT_ASSERT(i >= 0 && i < N);
				g_recv_h[i] = fnv(g_recv_h[i], p.data, p.h.len);
				g_recv_n[i] += p.h.len;
			}
			for (int i = 0; i < N; i++) {
				ssize_t n;
				while ((n = hread(fdof[i], chunk, sizeof(chunk))) > 0) {
					h_recv_h[i] = fnv(h_recv_h[i], chunk, (size_t)n);
					h_recv_n[i] += (uint64_t)n;
				}
			}
		}
	}
	for (int i = 0; i < N; i++) {
		UT_EQ(h_recv_n[i], g_sent_n[i]);
		UT_ASSERT(h_recv_h[i] == g_sent_h[i]);
		UT_EQ(g_recv_n[i], h_sent_n[i]);
		UT_ASSERT(g_recv_h[i] == h_sent_h[i]);
		close(fdof[i]);
	}
	fg_fini(&g);
}

/* Guest sends 1 MiB to a host that reads slowly: the guest must stall on
 * credit (never over it), the device must hold at most buf_alloc, and
 * every byte must arrive once. */
UT_TEST(vsock_credit_stall_slow_host_reader)
{
	const uint32_t total = 1 << 20, bufsz = 16384;
	struct vsock_host_config cfg = { .conn_buf_bytes = bufsz };
	struct fg g;
	struct acc a = { 0 };
	struct pkt p;
	uint8_t chunk[4096];
	uint32_t sent = 0, got = 0, peer_alloc, peer_fwd, max_held = 0;
	uint64_t hs = FNV0, hr = FNV0;
	int stall_rounds = 0;

	fg_init(&g, &cfg);
	UT_EQ(vsock_host_listen(g.v, 3000, on_accept, &a), 0);
	guest_connect(&g, 7000, 3000, 1 << 20, &p);
	peer_alloc = p.h.buf_alloc;
	peer_fwd = p.h.fwd_cnt;
	UT_EQ(peer_alloc, bufsz);
	bool reading = false;
	for (int iter = 0; got < total && iter < 200000; iter++) {
		uint32_t credit = peer_alloc - (sent - peer_fwd);
		UT_ASSERT(credit <= peer_alloc);
		uint32_t n = credit < sizeof(chunk) ? credit : sizeof(chunk);
		if (n > total - sent)
			n = total - sent;
		if (n) {
			for (uint32_t j = 0; j < n; j++)
				chunk[j] = pat(1, sent + j);
			tx(&g, VIRTIO_VSOCK_OP_RW, 7000, 3000, 0, 1 << 20, 0, chunk, n);
			hs = fnv(hs, chunk, n);
			sent += n;
		}
		pump(&g);
		while (rx(&g, &p)) {
			UT_ASSERT(p.h.op == VIRTIO_VSOCK_OP_CREDIT_UPDATE);
			peer_alloc = p.h.buf_alloc;
			peer_fwd = p.h.fwd_cnt;
		}
		struct vsock_conn *c = find_conn(&g, 7000);
		UT_ASSERT(c && c->len <= bufsz);
		max_held = c->len > max_held ? c->len : max_held;
		if (!reading) {
			/* Phase 1: nobody reads.  Wait until the guest is stalled. */
			stall_rounds = n ? 0 : stall_rounds + 1;
			if (stall_rounds == 20) {
				UT_ASSERT(sent < 512 * 1024);   /* bounded: ring + socket */
				UT_EQ(c->len, bufsz);           /* the ring is full */
				reading = true;
			}
			continue;
		}
		ssize_t r = hread(a.fd[0], chunk, iter % 3 ? 1000 : 4096);   /* slowly */
		if (r > 0) {
			hr = fnv(hr, chunk, (size_t)r);
			got += (uint32_t)r;
		}
	}
	UT_EQ(sent, total);
	UT_EQ(got, total);
	UT_ASSERT(hs == hr);
	UT_EQ(max_held, bufsz);
	struct vsock_stats s;
	vsock_host_stats(g.v, &s);
	UT_EQ(s.credit_violations, 0);
	UT_EQ(s.rst_sent, 0);
	close(a.fd[0]);
	fg_fini(&g);
}

UT_TEST(vsock_credit_violation_resets)
{
	struct vsock_host_config cfg = { .conn_buf_bytes = 4096 };
	struct fg g;
	struct acc a = { 0 };
	struct pkt p;
	static uint8_t big[8192];
	fg_init(&g, &cfg);
	UT_EQ(vsock_host_listen(g.v, 3001, on_accept, &a), 0);
	guest_connect(&g, 7001, 3001, 65536, &p);
	/* Fill the host socket, then the ring, then one byte too many. */
	for (int i = 0; i < 200 && !(find_conn(&g, 7001)->len); i++)
		tx(&g, VIRTIO_VSOCK_OP_RW, 7001, 3001, 0, 65536, 0, big, 4096);
	struct vsock_conn *c = find_conn(&g, 7001);
	UT_ASSERT(c && c->len > 0);
	while (rx(&g, &p))
		;
	tx(&g, VIRTIO_VSOCK_OP_RW, 7001, 3001, 0, 65536, 0, big, 4096 - c->len + 1);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, 3001, 7001);
	struct vsock_stats s;
	vsock_host_stats(g.v, &s);
	UT_EQ(s.credit_violations, 1);
	close(a.fd[0]);
	pump(&g);
	UT_EQ(vsock_host_nconns(g.v), 0);
	fg_fini(&g);
}

/* Host writes 1 MiB to a guest with ~6 KB of credit that updates slowly:
 * the device never exceeds the guest's credit, the host writer stalls in
 * the socket, and every byte arrives once. */
UT_TEST(vsock_credit_stall_slow_guest)
{
	const uint32_t total = 1 << 20, galloc = 6000;   /* not a multiple of the rx buffer */
	struct fg g;
	struct pkt p;
	static uint8_t chunk[65536];
	uint32_t written = 0, got = 0, adv = 0;
	uint64_t hs = FNV0, hr = FNV0;
	bool stalled_writer = false, saw_credit_request = false;
	int fd;

	fg_init(&g, NULL);
	UT_EQ(vsock_host_connect(g.v, 90, &fd), 0);
	UT_ASSERT(rx_wait(&g, &p));
	uint32_t hport = p.h.src_port;
	tx(&g, VIRTIO_VSOCK_OP_RESPONSE, 90, hport, 0, galloc, 0, NULL, 0);
	for (int iter = 0; got < total && iter < 100000; iter++) {
		if (written < total) {
			uint32_t n = total - written < sizeof(chunk) ? total - written : sizeof(chunk);
			for (uint32_t j = 0; j < n; j++)
				chunk[j] = pat(2, written + j);
			ssize_t w = send(fd, chunk, n, MSG_DONTWAIT);
			if (w > 0) {
				hs = fnv(hs, chunk, (size_t)w);
				written += (uint32_t)w;
			} else {
				UT_EQ(errno, EAGAIN);
				stalled_writer = true;
			}
		}
		pump(&g);
		while (rx(&g, &p)) {
			if (p.h.op == VIRTIO_VSOCK_OP_CREDIT_REQUEST) {
				saw_credit_request = true;
				continue;
			}
			UT_EQ(p.h.op, VIRTIO_VSOCK_OP_RW);
			hr = fnv(hr, p.data, p.h.len);
			got += p.h.len;
			UT_ASSERT(got - adv <= galloc); /* never beyond our credit */
		}
		/* Phase 1 (first 300 iterations): the guest grants nothing more. */
		if (iter < 300) {
			UT_ASSERT(got <= galloc);
			continue;
		}
		if (iter == 300) {
			UT_EQ(got, galloc);
			UT_ASSERT(stalled_writer);
			UT_ASSERT(saw_credit_request);
		}
		if (got - adv >= galloc / 2 || (iter % 7 == 0 && got != adv)) {
			adv = got;
			tx(&g, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 90, hport, 0, galloc, adv, NULL, 0);
		}
	}
	UT_EQ(written, total);
	UT_EQ(got, total);
	UT_ASSERT(hs == hr);
	close(fd);
	fg_fini(&g);
}

/* The guest closes with bytes still in the device's buffer (slow host
 * reader): it gets its RST at once, the host still reads every byte. */
UT_TEST(vsock_guest_close_drains_to_host)
{
	struct vsock_host_config cfg = { .conn_buf_bytes = 8192 };
	struct fg g;
	struct acc a = { 0 };
	struct pkt p;
	uint8_t chunk[4096];
	uint32_t sent = 0, got = 0, alloc, fwd;
	uint64_t hs = FNV0, hr = FNV0;
	fg_init(&g, &cfg);
	UT_EQ(vsock_host_listen(g.v, 3002, on_accept, &a), 0);
	guest_connect(&g, 7002, 3002, 65536, &p);
	alloc = p.h.buf_alloc;
	fwd = p.h.fwd_cnt;
	for (int i = 0; i < 1000 && find_conn(&g, 7002)->len < 8192; i++) {
		uint32_t n = alloc - (sent - fwd);
		n = n > sizeof(chunk) ? sizeof(chunk) : n;
		for (uint32_t j = 0; j < n; j++)
			chunk[j] = pat(3, sent + j);
		if (n)
			tx(&g, VIRTIO_VSOCK_OP_RW, 7002, 3002, 0, 65536, 0, chunk, n);
		hs = fnv(hs, chunk, n);
		sent += n;
		while (rx(&g, &p)) {
			alloc = p.h.buf_alloc;
			fwd = p.h.fwd_cnt;
		}
	}
	UT_EQ(find_conn(&g, 7002)->len, 8192);
	tx(&g, VIRTIO_VSOCK_OP_SHUTDOWN, 7002, 3002, 3, 65536, 0, NULL, 0);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, 3002, 7002);
	UT_EQ(vsock_host_nconns(g.v), 1);               /* still draining */
	for (int i = 0; i < 100000; i++) {
		ssize_t r = hread(a.fd[0], chunk, sizeof(chunk));
		if (r == 0)
			break;
		if (r > 0) {
			hr = fnv(hr, chunk, (size_t)r);
			got += (uint32_t)r;
		}
		pump(&g);
	}
	UT_EQ(got, sent);
	UT_ASSERT(hs == hr);
	UT_EQ(hread(a.fd[0], chunk, 1), 0);
	UT_EQ(vsock_host_nconns(g.v), 0);
	expect_none(&g);
	close(a.fd[0]);
	fg_fini(&g);
}

/* ---- hostile rings: each must set DEVICE_NEEDS_RESET, never crash, and
 * the device must work again after a reset. */

static void c_loop(struct fg *g)
{
	desc(g, 1, 0, TXBUF(0), VSOCK_HDR_LEN, VRING_DESC_F_NEXT, 1);
	desc(g, 1, 1, TXBUF(0) + 0x100, 10, VRING_DESC_F_NEXT, 0);
	post(g, 1, 0);
}
static void c_oob(struct fg *g) { desc(g, 1, 0, 64ull << 20, VSOCK_HDR_LEN, 0, 0); post(g, 1, 0); }
static void c_wrap(struct fg *g) { desc(g, 1, 0, ~0ull - 10, VSOCK_HDR_LEN, 0, 0); post(g, 1, 0); }
static void c_huge(struct fg *g)
{
	desc(g, 1, 0, TXBUF(0), VSOCK_HDR_LEN, VRING_DESC_F_NEXT, 1);
	desc(g, 1, 1, TXBUF(0) + 0x100, 0xffffffffu, 0, 0);
	post(g, 1, 0);
}
static void c_head(struct fg *g) { post(g, 1, QN); }
static void c_idx(struct fg *g)
{
	avail_ring(g, 1)[1] = htole16((uint16_t)(g->avail[1] + QN + 1));
}
static void c_order(struct fg *g)
{
	desc(g, 1, 0, TXBUF(0) + 0x100, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	desc(g, 1, 1, TXBUF(0), VSOCK_HDR_LEN, 0, 0);
	post(g, 1, 0);
}
static void c_long(struct fg *g)
{
	uint64_t it = 0x800000;                 /* 1 direct + 256 indirect > 256 */
	for (uint16_t i = 0; i < 256; i++) {
		uint8_t *d = gp(g, it + 16u * i, 16);
		uint64_t a = htole64(TXBUF(1));
		uint32_t l = htole32(1);
		uint16_t f = htole16(i < 255 ? VRING_DESC_F_NEXT : 0), n = htole16(i + 1);
		memcpy(d, &a, 8), memcpy(d + 8, &l, 4), memcpy(d + 12, &f, 2), memcpy(d + 14, &n, 2);
	}
	desc(g, 1, 0, TXBUF(0), VSOCK_HDR_LEN, VRING_DESC_F_NEXT, 1);
	desc(g, 1, 1, it, 256 * 16, VRING_DESC_F_INDIRECT, 0);
	post(g, 1, 0);
}
static void c_rx_loop(struct fg *g)
{
	/* Break the next rx buffer, then make the device answer something. */
	uint16_t head = le16toh(avail_ring(g, 0)[2 + g->used_seen[0] % QN]);
	desc(g, 0, head + 1, RXDAT(0), 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, head);
	tx(g, VIRTIO_VSOCK_OP_REQUEST, 1, 1, 0, 0, 0, NULL, 0);
}

UT_TEST(vsock_hostile_rings)
{
	void (*cases[])(struct fg *) = { c_loop, c_oob, c_wrap, c_huge, c_head, c_idx, c_order,
					 c_long, c_rx_loop };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fg g;
		struct acc a = { 0 };
		struct pkt p;
		fg_init(&g, NULL);
		UT_EQ(vsock_host_listen(g.v, 5, on_accept, &a), 0);
		cases[i](&g);
		mw(&g, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
		pump(&g);
		if (!(mr(&g, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET))
			UT_FAIL("case %zu: no NEEDS_RESET", i);
		UT_ASSERT(mr(&g, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
		struct vsock_stats s;
		vsock_host_stats(g.v, &s);
		UT_EQ(s.ring_errors, 1);
		/* A broken device ignores its queues until reset... */
		tx(&g, VIRTIO_VSOCK_OP_REQUEST, 40, 5, 0, 65536, 0, NULL, 0);
		UT_EQ(a.n, 0);
		/* ...and works after one. */
		driver_init(&g);
		UT_EQ(mr(&g, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
		guest_connect(&g, 41, 5, 65536, &p);
		UT_EQ(a.n, 1);
		close(a.fd[0]);
		fg_fini(&g);
	}
}

UT_TEST(vsock_hostile_packets)
{
	struct fg g;
	struct acc a = { 0 };
	struct pkt p;
	struct vsock_stats s;
	char buf[16];
	fg_init(&g, NULL);
	UT_EQ(vsock_host_listen(g.v, 6, on_accept, &a), 0);
	struct vsock_hdr h = { .src_cid = GCID, .dst_cid = 2, .src_port = 50, .dst_port = 6,
			       .type = 1, .op = 99 };
	tx_hdr(&g, &h, NULL, 0);                        /* unknown op */
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, 6, 50);
	h.op = 0;
	tx_hdr(&g, &h, NULL, 0);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, 6, 50);
	h.op = VIRTIO_VSOCK_OP_REQUEST;
	h.src_cid = 4;                                  /* spoofed source: silence */
	tx_hdr(&g, &h, NULL, 0);
	h.src_cid = GCID | (1ull << 40);
	tx_hdr(&g, &h, NULL, 0);
	expect_none(&g);
	h.src_cid = GCID;
	h.dst_cid = 5;                                  /* not the host: RST from 5 */
	tx_hdr(&g, &h, NULL, 0);
	UT_ASSERT(rx_wait(&g, &p));
	UT_EQ(p.h.op, VIRTIO_VSOCK_OP_RST);
	UT_EQ(p.h.src_cid, 5);
	h.dst_cid = 2;
	h.type = 2;                                     /* SEQPACKET: not negotiated */
	tx_hdr(&g, &h, NULL, 0);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, 6, 50);
	h.type = 1;
	h.len = 100000;                                 /* over the maximum */
	tx_hdr(&g, &h, NULL, 0);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, 6, 50);
	h.op = VIRTIO_VSOCK_OP_RW;
	h.len = 10;                                     /* claims more than it carries */
	tx_hdr(&g, &h, "12345", 5);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, 6, 50);
	/* A chain too short for a header: dropped, nothing to answer to. */
	desc(&g, 1, 0, TXBUF(0), 20, 0, 0);
	post(&g, 1, 0);
	mw(&g, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	expect_none(&g);
	UT_EQ(a.n, 0);
	/* A header split over three descriptors is fine. */
	struct vsock_hdr r = { .src_cid = GCID, .dst_cid = 2, .src_port = 51, .dst_port = 6,
			       .type = 1, .op = VIRTIO_VSOCK_OP_REQUEST, .buf_alloc = 65536 };
	vsock_hdr_encode(gp(&g, TXBUF(1), VSOCK_HDR_LEN), &r);
	desc(&g, 1, 2, TXBUF(1), 10, VRING_DESC_F_NEXT, 3);
	desc(&g, 1, 3, TXBUF(1) + 10, 20, VRING_DESC_F_NEXT, 4);
	desc(&g, 1, 4, TXBUF(1) + 30, 14, 0, 0);
	post(&g, 1, 2);
	mw(&g, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	expect(&g, &p, VIRTIO_VSOCK_OP_RESPONSE, 6, 51);
	UT_EQ(a.n, 1);
	/* On a live connection a bad length resets it; the host sees EOF. */
	r.op = VIRTIO_VSOCK_OP_RW;
	r.len = 70000;
	tx_hdr(&g, &r, NULL, 0);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, 6, 51);
	UT_EQ(hread(a.fd[0], buf, sizeof(buf)), 0);
	close(a.fd[0]);
	/* A second REQUEST, or a RESPONSE, on a live connection: RST. */
	guest_connect(&g, 52, 6, 65536, &p);
	tx(&g, VIRTIO_VSOCK_OP_REQUEST, 52, 6, 0, 65536, 0, NULL, 0);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, 6, 52);
	guest_connect(&g, 53, 6, 65536, &p);
	tx(&g, VIRTIO_VSOCK_OP_RESPONSE, 53, 6, 0, 65536, 0, NULL, 0);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, 6, 53);
	/* An rx buffer too small for a header is returned empty. */
	uint16_t head = le16toh(avail_ring(&g, 0)[2 + g.used_seen[0] % QN]);
	desc(&g, 0, head, RXHDR(head / 2), 10, VRING_DESC_F_WRITE, 0);
	tx(&g, VIRTIO_VSOCK_OP_REQUEST, 54, 999, 0, 65536, 0, NULL, 0);
	pump(&g);
	uint8_t *u = used_ring(&g, 0) + 4 + 8 * (g.used_seen[0] % QN);
	UT_EQ(le32toh(*(uint32_t *)u), head);
	UT_EQ(le32toh(*(uint32_t *)(u + 4)), 0);
	g.used_seen[0]++;
	desc(&g, 0, head, RXHDR(head / 2), VSOCK_HDR_LEN, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, head + 1);
	post(&g, 0, head);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, 999, 54);
	vsock_host_stats(g.v, &s);
	UT_EQ(s.drop_bad_op, 2);
	UT_EQ(s.drop_bad_cid, 3);
	UT_EQ(s.drop_bad_type, 1);
	UT_EQ(s.drop_bad_len, 3);
	UT_EQ(s.drop_short, 1);
	UT_EQ(s.rx_bad_buf, 1);
	UT_EQ(s.ring_errors, 0);
	UT_EQ(mr(&g, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	for (int i = 1; i < a.n; i++)
		close(a.fd[i]);
	fg_fini(&g);
}

UT_TEST(vsock_device_reset_closes_connections)
{
	struct fg g;
	struct acc a = { 0 };
	struct pkt p;
	char buf[8];
	int fd, fd2;
	fg_init(&g, NULL);
	UT_EQ(vsock_host_listen(g.v, 7, on_accept, &a), 0);
	guest_connect(&g, 60, 7, 65536, &p);
	UT_EQ(vsock_host_connect(g.v, 61, &fd), 0);
	UT_ASSERT(rx_wait(&g, &p));
	tx(&g, VIRTIO_VSOCK_OP_RESPONSE, 61, p.h.src_port, 0, 65536, 0, NULL, 0);
	UT_EQ(vsock_host_nconns(g.v), 2);
	mw(&g, VIRTIO_MMIO_STATUS, 0);
	UT_EQ(vsock_host_nconns(g.v), 0);
	UT_EQ(hread(a.fd[0], buf, sizeof(buf)), 0);
	UT_EQ(hread(fd, buf, sizeof(buf)), 0);
	mw(&g, VIRTIO_MMIO_QUEUE_SEL, 0);
	UT_EQ(mr(&g, VIRTIO_MMIO_QUEUE_READY), 0);
	/* A connect while the driver is down waits; the driver's own reset
	 * at probe drops it (EOF), and connects after DRIVER_OK work. */
	UT_EQ(vsock_host_connect(g.v, 62, &fd2), 0);
	pump(&g);
	UT_EQ(vsock_host_nconns(g.v), 1);
	driver_init(&g);
	UT_EQ(hread(fd2, buf, sizeof(buf)), 0);
	expect_none(&g);
	close(fd2);
	UT_EQ(vsock_host_connect(g.v, 63, &fd2), 0);
	UT_ASSERT(rx_wait(&g, &p));
	UT_EQ(p.h.op, VIRTIO_VSOCK_OP_REQUEST);
	UT_EQ(p.h.dst_port, 63);
	close(fd);
	close(fd2);
	close(a.fd[0]);
	fg_fini(&g);
}

UT_TEST(vsock_connection_limit)
{
	struct vsock_host_config cfg = { .max_conns = 4 };
	struct fg g;
	struct acc a = { 0 };
	struct pkt p;
	int fd;
	fg_init(&g, &cfg);
	UT_EQ(vsock_host_listen(g.v, 8, on_accept, &a), 0);
	for (uint32_t i = 0; i < 4; i++)
		guest_connect(&g, 100 + i, 8, 65536, &p);
	tx(&g, VIRTIO_VSOCK_OP_REQUEST, 104, 8, 0, 65536, 0, NULL, 0);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, 8, 104);
	UT_EQ(vsock_host_connect(g.v, 1, &fd), -EMFILE);
	struct vsock_stats s;
	vsock_host_stats(g.v, &s);
	UT_EQ(s.conn_limit, 2);
	UT_EQ(a.n, 4);
	/* Close one: its slot comes back. */
	tx(&g, VIRTIO_VSOCK_OP_SHUTDOWN, 100, 8, 3, 65536, 0, NULL, 0);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, 8, 100);
	guest_connect(&g, 105, 8, 65536, &p);
	for (int i = 0; i < a.n; i++)
		close(a.fd[i]);
	fg_fini(&g);
}

/* Rings are allocated only while they hold bytes, and all of a VM's rings
 * together stay within max_buf_bytes: with room for two, a third
 * connection that needs a ring (its host reader is stalled) is reset and
 * counted; a drained ring is freed and its budget serves the next one. */
static int fill_until_ring(struct fg *g, uint32_t gport, uint32_t hport, const uint8_t *data)
{
	struct pkt p;
	for (int i = 0; i < 200; i++) {
		tx(g, VIRTIO_VSOCK_OP_RW, gport, hport, 0, 65536, 0, data, 1024);
		pump(g);
		while (rx(g, &p))
			if (p.h.op == VIRTIO_VSOCK_OP_RST && p.h.dst_port == gport)
				return -1;
		struct vsock_conn *c = find_conn(g, gport);
		UT_ASSERT(c);
		if (c->len)
			return 0;
	}
	UT_FAIL("connection %u never needed a ring", gport);
	return -2;
}

UT_TEST(vsock_buffer_budget_per_vm)
{
	struct vsock_host_config cfg = { .conn_buf_bytes = 4096, .max_buf_bytes = 8192 };
	struct fg g;
	struct acc a = { 0 };
	struct pkt p;
	static uint8_t data[1024];
	uint8_t sink[65536];
	struct vsock_stats s;

	struct vsock_host_config bad = { .conn_buf_bytes = 8192, .max_buf_bytes = 4096 };
	struct vsock *v;
	struct vmm_mem m;
	UT_EQ(vmm_mem_init(&m, 32 << 20), 0);
	UT_EQ(vsock_host_create(&v, &m, BASE, 5, -1, GCID, &bad), -EINVAL);
	vmm_mem_release(&m);

	fg_init(&g, &cfg);
	UT_EQ(vsock_host_listen(g.v, 9, on_accept, &a), 0);
	for (uint32_t i = 0; i < 4; i++)
		guest_connect(&g, 200 + i, 9, 65536, &p);
	UT_EQ(fill_until_ring(&g, 200, 9, data), 0);
	UT_EQ(fill_until_ring(&g, 201, 9, data), 0);
	UT_EQ(g.v->buf_bytes, 8192);
	UT_EQ(fill_until_ring(&g, 202, 9, data), -1);      /* reset: no budget */
	vsock_host_stats(g.v, &s);
	UT_EQ(s.buf_limit, 1);
	UT_EQ(s.credit_violations, 0);
	UT_EQ(g.v->buf_bytes, 8192);
	/* Drain 200's reader: its ring empties and is freed. */
	for (int i = 0; i < 50 && find_conn(&g, 200)->len; i++) {
		while (hread(a.fd[0], sink, sizeof(sink)) > 0)
			;
		pump(&g);
	}
	UT_EQ(find_conn(&g, 200)->len, 0);
	UT_ASSERT(find_conn(&g, 200)->buf == NULL);
	UT_EQ(g.v->buf_bytes, 4096);
	UT_EQ(fill_until_ring(&g, 203, 9, data), 0);
	UT_EQ(g.v->buf_bytes, 8192);
	vsock_host_stats(g.v, &s);
	UT_EQ(s.buf_limit, 1);
	for (int i = 0; i < a.n; i++)
		close(a.fd[i]);
	fg_fini(&g);
}

UT_TEST(vsock_transport_reset_event)
{
	struct fg g;
	struct acc a = { 0 };
	struct pkt p;
	char buf[4];
	fg_init(&g, NULL);
	UT_EQ(vsock_host_listen(g.v, 10, on_accept, &a), 0);
	guest_connect(&g, 200, 10, 65536, &p);
	mw(&g, VIRTIO_MMIO_INTERRUPT_ACK, 3);
	memset(gp(&g, EVBUF, 8), 0xee, 8);
	vsock_host_transport_reset(g.v);
	UT_EQ(hread(a.fd[0], buf, sizeof(buf)), 0);
	UT_EQ(vsock_host_nconns(g.v), 0);
	UT_EQ(used_idx(&g, 2), 1);
	uint8_t *u = used_ring(&g, 2) + 4;
	UT_EQ(le32toh(*(uint32_t *)u), 0);              /* descriptor 0 */
	UT_EQ(le32toh(*(uint32_t *)(u + 4)), 4);        /* le32 event id */
	UT_EQ(le32toh(*(uint32_t *)gp(&g, EVBUF, 4)), VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	UT_ASSERT(mr(&g, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING);
	/* Listeners survive: the guest reconnects. */
	guest_connect(&g, 201, 10, 65536, &p);
	close(a.fd[0]);
	close(a.fd[1]);
	fg_fini(&g);
}

UT_TEST(vsock_connect_and_close_timeouts)
{
	struct vsock_host_config cfg = { .connect_timeout_ms = 30, .close_timeout_ms = 30 };
	struct fg g;
	struct pkt p;
	char buf[4];
	int fd;
	fg_init(&g, &cfg);
	/* The guest never answers the REQUEST. */
	UT_EQ(vsock_host_connect(g.v, 300, &fd), 0);
	UT_ASSERT(rx_wait(&g, &p));
	uint32_t hport = p.h.src_port;
	usleep(50 * 1000);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, hport, 300);
	UT_EQ(hread(fd, buf, sizeof(buf)), 0);
	close(fd);
	/* The host closes; the guest never sends its RST. */
	UT_EQ(vsock_host_connect(g.v, 301, &fd), 0);
	UT_ASSERT(rx_wait(&g, &p));
	hport = p.h.src_port;
	tx(&g, VIRTIO_VSOCK_OP_RESPONSE, 301, hport, 0, 65536, 0, NULL, 0);
	close(fd);
	expect(&g, &p, VIRTIO_VSOCK_OP_SHUTDOWN, hport, 301);
	UT_EQ(vsock_host_nconns(g.v), 1);
	/* vsock_host_poll() sleeps until the deadline, not forever. */
	uint64_t t0 = vsock__now_ns();
	while (vsock_host_nconns(g.v) && vsock__now_ns() - t0 < 2000000000ull)
		UT_ASSERT(vsock_host_poll(g.v, 5000) >= 0);
	UT_ASSERT(vsock__now_ns() - t0 < 1000000000ull);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, hport, 301);
	/* The caller closes before the guest answers: RST, not SHUTDOWN. */
	UT_EQ(vsock_host_connect(g.v, 302, &fd), 0);
	UT_ASSERT(rx_wait(&g, &p));
	hport = p.h.src_port;
	close(fd);
	expect(&g, &p, VIRTIO_VSOCK_OP_RST, hport, 302);
	UT_EQ(vsock_host_nconns(g.v), 0);
	/* No driver at all: the connect times out and the caller sees EOF. */
	mw(&g, VIRTIO_MMIO_STATUS, 0);
	UT_EQ(vsock_host_connect(g.v, 303, &fd), 0);
	usleep(40 * 1000);
	pump(&g);
	UT_EQ(hread(fd, buf, sizeof(buf)), 0);
	UT_EQ(vsock_host_nconns(g.v), 0);
	close(fd);
	fg_fini(&g);
}

/* ---- the device thread, with a fake guest running concurrently ---- */

struct guest_thread {
	struct fg *g;
	int stop;                       /* atomic */
	int irqs;
};

/* An echo server on guest port 80; port 81 refuses; port 82 never answers. */
static void *guest_main(void *arg)
{
	struct guest_thread *t = arg;
	struct fg *g = t->g;
	struct pkt p;
	while (!__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE)) {
		if (!rx(g, &p)) {
			struct pollfd pf = { .fd = virtio_mmio_irq_fd(g->d), .events = POLLIN };
			uint64_t x;
			if (poll(&pf, 1, 2) == 1 && read(pf.fd, &x, sizeof(x)) == sizeof(x)) {
				t->irqs++;
				mw(g, VIRTIO_MMIO_INTERRUPT_ACK, mr(g, VIRTIO_MMIO_INTERRUPT_STATUS));
			}
			continue;
		}
		uint32_t gp_ = p.h.dst_port, hp = p.h.src_port;
		switch (p.h.op) {
		case VIRTIO_VSOCK_OP_REQUEST:
			if (gp_ == 80)
				tx(g, VIRTIO_VSOCK_OP_RESPONSE, gp_, hp, 0, 1 << 20, 0, NULL, 0);
			else if (gp_ == 81)
				tx(g, VIRTIO_VSOCK_OP_RST, gp_, hp, 0, 0, 0, NULL, 0);
			break;
		case VIRTIO_VSOCK_OP_RW:
			tx(g, VIRTIO_VSOCK_OP_RW, gp_, hp, 0, 1 << 20, 0, p.data, p.h.len);
			break;
		case VIRTIO_VSOCK_OP_SHUTDOWN:
			tx(g, VIRTIO_VSOCK_OP_RST, gp_, hp, 0, 0, 0, NULL, 0);
			break;
		default:
			break;
		}
	}
	return NULL;
}

UT_TEST(vsock_device_thread_end_to_end)
{
	struct fg g;
	struct guest_thread t = { .g = &g };
	pthread_t th;
	char buf[64];
	int fd;

	fg_init(&g, NULL);
	UT_EQ(vsock_host_start(g.v), 0);
	UT_EQ(vsock_host_start(g.v), -EALREADY);
	g.threaded = true;
	UT_EQ(pthread_create(&th, NULL, guest_main, &t), 0);
	UT_EQ(vsock_host_connect_wait(g.v, 81, 2000, &fd), -ECONNREFUSED);
	UT_EQ(fd, -1);
	UT_EQ(vsock_host_connect_wait(g.v, 82, 100, &fd), -ETIMEDOUT);
	for (int round = 0; round < 20; round++) {
		UT_EQ(vsock_host_connect_wait(g.v, 80, 2000, &fd), 0);
		int len = snprintf(buf, sizeof(buf), "ping %d", round);
		UT_EQ(write(fd, buf, (size_t)len), len);
		char in[64];
		int got = 0;
		while (got < len) {
			ssize_t r = read(fd, in + got, sizeof(in) - (size_t)got);
			UT_ASSERT(r > 0);
			got += (int)r;
		}
		UT_EQ(got, len);
		UT_ASSERT(memcmp(in, buf, (size_t)len) == 0);
		close(fd);
	}
	/* The loop can be stopped (snapshots) and started again. */
	vsock_host_stop(g.v);
	UT_EQ(vsock_host_start(g.v), 0);
	UT_EQ(vsock_host_connect_wait(g.v, 80, 2000, &fd), 0);
	close(fd);
	for (int i = 0; i < 500 && vsock_host_nconns(g.v); i++)
		usleep(2000);
	UT_EQ(vsock_host_nconns(g.v), 0);
	UT_ASSERT(t.irqs > 0);
	__atomic_store_n(&t.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	fg_fini(&g);                                    /* joins the device thread */
}

/* Snapshot/restore of the transport: a new device over the same memory
 * continues the rings where the old one stopped; connections are gone and
 * the guest is told with TRANSPORT_RESET. */
UT_TEST(vsock_transport_state_restore)
{
	struct fg g;
	struct acc a = { 0 }, b = { 0 };
	struct pkt p;
	struct virtio_mmio_state st;
	struct vsock *v2;
	char buf[8];

	fg_init(&g, NULL);
	UT_EQ(vsock_host_listen(g.v, 11, on_accept, &a), 0);
	for (uint32_t i = 0; i < 5; i++) {
		guest_connect(&g, 300 + i, 11, 65536, &p);
		tx(&g, VIRTIO_VSOCK_OP_RW, 300 + i, 11, 0, 65536, 0, "x", 1);
	}
	virtio_mmio_save(g.d, &st);
	UT_EQ(st.q[VSOCK_RXQ].used_idx, 5);
	UT_EQ(st.q[VSOCK_TXQ].last_avail, 10);
	UT_EQ(vsock_host_create(&v2, &g.mem, BASE, 5, -1, GCID, NULL), 0);
	UT_EQ(virtio_mmio_restore(vsock_host_mmio(v2), &st), 0);
	vsock_host_release(g.v);
	for (int i = 0; i < a.n; i++) {
		UT_EQ(hread(a.fd[i], buf, sizeof(buf)), 1);
		UT_EQ(hread(a.fd[i], buf, sizeof(buf)), 0);     /* old device gone: EOF */
		close(a.fd[i]);
	}
	g.v = v2;
	g.d = vsock_host_mmio(v2);
	UT_EQ(mr(&g, VIRTIO_MMIO_STATUS), st.status);
	vsock_host_transport_reset(g.v);
	UT_EQ(used_idx(&g, 2), 1);
	UT_EQ(vsock_host_listen(g.v, 11, on_accept, &b), 0);
	guest_connect(&g, 400, 11, 65536, &p);
	UT_EQ(b.n, 1);
	UT_EQ(used_idx(&g, 0), 6);
	close(b.fd[0]);
	/* A state that does not fit guest memory is refused; device reset. */
	st.q[VSOCK_TXQ].num = 3;
	UT_EQ(virtio_mmio_restore(g.d, &st), -EINVAL);
	UT_EQ(mr(&g, VIRTIO_MMIO_STATUS), 0);
	fg_fini(&g);
}
