/* fuzz_vsock.c — libFuzzer target for the virtio-vsock device, its
 * virtio-mmio transport and its virtqueues, without KVM and without threads.
 *
 * Each input is a fresh device (vmfd = -1) whose driver set-up (features,
 * queue sizes) comes from the first bytes, followed by a program of
 * commands: raw writes into the guest-memory window that holds the rings and
 * buffers, raw descriptors, avail-ring publishes and avail-index jumps,
 * well-formed-looking vsock packets with fuzzed fields (single, split or
 * indirect chains), rx buffers of fuzzed sizes, kicks, register writes and
 * reads, and host-side actions on the sockets (write, read, shutdown,
 * close, connect).  The device is driven synchronously with
 * virtio_mmio_process() and vsock_host_poll(v, 0).  Invariants that must
 * hold whatever the guest does are checked with __builtin_trap().
 *
 * Build: make -f Makefile -f tests/fuzz/module.mk fuzz-build
 * Run:   build/fuzz/fuzz_vsock -max_total_time=60 build/fuzz/vsock-corpus tests/fuzz/vsock
 * Seeds: tests/fuzz/vsock/ (written by this file built with -DFUZZ_VSOCK_SEEDS,
 *        see tests/fuzz/module.mk: fuzz-vsock-seeds).
 */
#include <endian.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/fake_driver.h"
#include "vmm/vsock.h"

#define CHECK(c)   do { if (!(c)) __builtin_trap(); } while (0)
#define BASE       0xd0000000ull
#define GCID       3
#define MEMSZ      (16ull << 20)
#define WIN        0x10000ull              /* rings + buffers live here */
#define WINSZ      0x20000u
#define RINGQ(q)   (WIN + (uint64_t)(q) * 0x3000)
#define BUFS       (WIN + 0x9000ull)
#define NSLOT      8
#define SLOTSZ     0x2000u
#define MAXFDS     32
#define MAXOPS     4000

enum { OP_WRITE, OP_DESC, OP_PUBLISH, OP_PACKET, OP_RXPOST, OP_KICK, OP_POLL, OP_HWRITE,
       OP_HREAD, OP_HCLOSE, OP_HSHUT, OP_CONNECT, OP_MMIO_W, OP_MMIO_R, OP_AVAIL_IDX,
       OP_MISC, OP_COUNT };

struct in { const uint8_t *p; size_t n; };

/* Little-endian readers; past the end they read zeros.  Every field is read
 * in its own statement: the input's meaning must not depend on the
 * compiler's evaluation order. */
static uint8_t u8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint16_t u16(struct in *in)
{
	uint16_t lo = u8(in);
	return (uint16_t)(lo | u8(in) << 8);
}

static uint32_t u32(struct in *in)
{
	uint32_t lo = u16(in);
	return lo | (uint32_t)u16(in) << 16;
}

static uint64_t u64(struct in *in)
{
	uint64_t lo = u32(in);
	return lo | (uint64_t)u32(in) << 32;
}

struct fz {
	struct vsock *v;
	struct virtio_mmio_dev *d;
	uint16_t num[3], avail[3];
	uint32_t npkt;
	int fds[MAXFDS], nfds;
};

static struct vmm_mem mem;

static void add_fd(struct fz *f, int fd)
{
	if (f->nfds < MAXFDS)
		f->fds[f->nfds++] = fd;
	else
		close(fd);
}

static void on_accept(void *arg, int fd, uint32_t gport, uint32_t hport)
{
	add_fd(arg, fd);
}

static void mw(struct fz *f, uint32_t off, uint32_t v)
{
	v = htole32(v);
	virtio_mmio_access(f->d, BASE + off, (uint8_t *)&v, 4, true);
}

static uint32_t mr(struct fz *f, uint32_t off)
{
	uint32_t v = 0;
	virtio_mmio_access(f->d, BASE + off, (uint8_t *)&v, 4, false);
	return le32toh(v);
}

static void put_desc(struct fz *f, int q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t *d = vmm_mem_ptr(&mem, RINGQ(q) + 16u * (i % f->num[q]), 16);
	fake_desc_write(d, addr, len, flags, next);
}

static void publish(struct fz *f, int q, uint16_t head)
{
	uint16_t *a = vmm_mem_ptr(&mem, RINGQ(q) + 0x1000, 6 + 2 * 256);
	a[2 + f->avail[q] % f->num[q]] = htole16(head);
	f->avail[q]++;
	__atomic_store_n(&a[1], htole16(f->avail[q]), __ATOMIC_RELEASE);
}

static void kick(struct fz *f, uint32_t q)
{
	mw(f, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	virtio_mmio_process(f->d);
}

static void driver_init(struct fz *f, struct in *in)
{
	uint8_t feat = u8(in);
	uint64_t features = 1ull << VIRTIO_F_VERSION_1;
	if (feat & 1)
		features |= 1ull << VIRTIO_RING_F_EVENT_IDX;
	if (feat & 2)
		features |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
	if (feat & 4)
		features &= ~(1ull << VIRTIO_F_VERSION_1);      /* must be refused */
	mw(f, VIRTIO_MMIO_STATUS, 0);
	CHECK(vsock_host_nconns(f->v) == 0 && mr(f, VIRTIO_MMIO_STATUS) == 0);
	mw(f, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	mw(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	mw(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	mw(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mw(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	mw(f, VIRTIO_MMIO_STATUS, mr(f, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_FEATURES_OK);
	CHECK(!(mr(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK) == !!(feat & 4));
	for (uint32_t q = 0; q < 3; q++) {
		uint8_t nb = u8(in);
		f->num[q] = (uint16_t)(1u << (nb % 9));
		f->avail[q] = 0;
		mw(f, VIRTIO_MMIO_QUEUE_SEL, q);
		mw(f, VIRTIO_MMIO_QUEUE_NUM, nb & 0x80 ? nb : f->num[q]);     /* sometimes bogus */
		mw(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)RINGQ(q));
		mw(f, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)RINGQ(q) + 0x1000);
		mw(f, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)RINGQ(q) + 0x2000);
		mw(f, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	mw(f, VIRTIO_MMIO_STATUS, mr(f, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_DRIVER_OK);
}

static uint64_t fz_addr(struct in *in, uint8_t mode)
{
	if (mode & 0x80)
		return u64(in);                                 /* anywhere at all */
	return WIN + u32(in) % WINSZ;
}

/* A vsock packet with fuzzed header fields, as a 1-3 descriptor chain or
 * through an indirect table, in one of NSLOT buffer slots. */
static void op_packet(struct fz *f, struct in *in)
{
	struct vsock_hdr h;
	uint8_t sel = u8(in), shape = u8(in);
	h.src_cid = sel & 1 ? u64(in) : GCID;
	h.dst_cid = sel & 2 ? u64(in) : VSOCK_HOST_CID;
	h.src_port = u8(in) % 16;
	h.dst_port = sel & 4 ? u32(in) : u8(in) % 8u;
	h.type = sel & 8 ? u16(in) : VIRTIO_VSOCK_TYPE_STREAM;
	h.op = (uint16_t)(u8(in) % 9);
	h.flags = u8(in);
	h.buf_alloc = sel & 16 ? u32(in) : 65536;
	h.fwd_cnt = u32(in);
	uint32_t plen = u16(in) % (SLOTSZ - 0x40), slot = f->npkt++ % NSLOT;
	h.len = sel & 32 ? u32(in) : plen;
	uint64_t buf = BUFS + slot * SLOTSZ;
	uint8_t *p = vmm_mem_ptr(&mem, buf, SLOTSZ);
	vsock_hdr_encode(p, &h);
	for (uint32_t i = 0; i < plen; i++)
		p[VSOCK_HDR_LEN + i] = (uint8_t)(i * 7 + slot);
	uint16_t d0 = (uint16_t)(slot * 3);
	uint32_t total = VSOCK_HDR_LEN + plen, cut = total ? u16(in) % (total + 1) : 0;
	if ((shape & 3) == 0 || total == cut) {
		put_desc(f, 1, d0, buf, total, 0, 0);
	} else if ((shape & 3) == 1) {                          /* split in two */
		put_desc(f, 1, d0, buf, cut, VRING_DESC_F_NEXT, (uint16_t)((d0 + 1) % f->num[1]));
		put_desc(f, 1, d0 + 1, buf + cut, total - cut, 0, 0);
	} else {                                                /* indirect table */
		uint64_t it = buf + SLOTSZ - 0x30;
		uint8_t *t = vmm_mem_ptr(&mem, it, 0x30);
		uint64_t a0 = htole64(buf), a1 = htole64(buf + cut);
		uint32_t l0 = htole32(cut), l1 = htole32(total - cut);
		uint16_t fl = htole16(VRING_DESC_F_NEXT), nx = htole16(1), z = 0;
		memset(t, 0, 0x30);
		memcpy(t, &a0, 8), memcpy(t + 8, &l0, 4), memcpy(t + 12, &fl, 2), memcpy(t + 14, &nx, 2);
		memcpy(t + 16, &a1, 8), memcpy(t + 24, &l1, 4), memcpy(t + 28, &z, 2);
		put_desc(f, 1, d0, it, (shape & 4) ? 0x30 : 0x20, VRING_DESC_F_INDIRECT, 0);
	}
	publish(f, 1, (uint16_t)(d0 % f->num[1]));
	if (!(shape & 8))
		kick(f, 1);
}

static void op_host(struct fz *f, struct in *in, int op)
{
	static uint8_t buf[65536];
	if (op == OP_CONNECT) {
		int fd;
		if (vsock_host_connect(f->v, u8(in) % 8, &fd) == 0)
			add_fd(f, fd);
		return;
	}
	if (!f->nfds)
		return;
	int k = u8(in) % f->nfds;
	switch (op) {
	case OP_HWRITE: {
		uint32_t n = u16(in) % sizeof(buf);
		memset(buf, 'a' + k, n);
		(void)!send(f->fds[k], buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		break;
	}
	case OP_HREAD:
		(void)!recv(f->fds[k], buf, u16(in) % sizeof(buf) + 1, MSG_DONTWAIT);
		break;
	case OP_HCLOSE:
		close(f->fds[k]);
		f->fds[k] = f->fds[--f->nfds];
		break;
	case OP_HSHUT:
		(void)shutdown(f->fds[k], u8(in) % 3);
		break;
	}
}

/* Snapshot the transport, maybe corrupt one byte of the state, restore. */
static void save_restore(struct fz *f, struct in *in)
{
	struct virtio_mmio_state st;
	virtio_mmio_save(f->d, &st);
	uint16_t off = u16(in);
	uint8_t x = u8(in);
	((uint8_t *)&st)[off % sizeof(st)] ^= x;
	if (virtio_mmio_restore(f->d, &st) < 0)
		CHECK(mr(f, VIRTIO_MMIO_STATUS) == 0 && vsock_host_nconns(f->v) == 0);
	else
		CHECK(vsock_host_nconns(f->v) == 0);
	virtio_mmio_process(f->d);
}

static void check_invariants(struct fz *f)
{
	struct vsock *v = f->v;
	uint32_t live = 0;
	virtio_mmio_lock(&v->mmio);
	for (uint32_t i = 0; i < v->cfg.max_conns; i++) {
		struct vsock_conn *c = &v->conns[i];
		if (c->state == VC_FREE)
			continue;
		live++;
		CHECK(c->len <= c->buf_alloc);
		CHECK(c->head < c->buf_alloc || c->len == 0);
		CHECK(c->fd >= 0 || (c->guest_done && c->len == 0));   /* host side closes last */
	}
	CHECK(live == v->nconns && live <= v->cfg.max_conns);
	CHECK(v->norphans <= VSOCK_MAX_ORPHANS);
	virtio_mmio_unlock(&v->mmio);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	struct fz f = { 0 };
	struct vsock_host_config cfg = {
		.max_conns = 8, .conn_buf_bytes = 4096u << (data && size ? data[0] % 4 : 0),
		.connect_timeout_ms = 60000, .close_timeout_ms = 60000,
	};

	if (!mem.host && vmm_mem_init(&mem, MEMSZ) < 0)
		__builtin_trap();
	memset(vmm_mem_ptr(&mem, WIN, WINSZ), 0, WINSZ);
	u8(&in);
	if (vsock_host_create(&f.v, &mem, BASE, 5, -1, GCID, &cfg) < 0)
		__builtin_trap();
	f.d = vsock_host_mmio(f.v);
	for (uint32_t port = 1; port <= 4; port++)
		CHECK(vsock_host_listen(f.v, port, on_accept, &f) == 0);
	driver_init(&f, &in);
	for (int ops = 0; in.n && ops < MAXOPS; ops++) {
		int op = u8(&in) % OP_COUNT;
		switch (op) {
		case OP_WRITE: {
			uint32_t off = u16(&in);
			off = (off | (uint32_t)(u8(&in) & 1) << 16) % WINSZ;
			uint32_t n = u8(&in);
			n = n > in.n ? (uint32_t)in.n : n;
			n = n > WINSZ - off ? WINSZ - off : n;
			memcpy(vmm_mem_ptr(&mem, WIN + off, n), in.p, n);
			in.p += n;
			in.n -= n;
			break;
		}
		case OP_DESC: {
			int q = u8(&in) % 3;
			uint16_t i = u8(&in);
			uint8_t mode = u8(&in);
			uint64_t addr = fz_addr(&in, mode);
			uint32_t len = mode & 0x40 ? u32(&in) : u16(&in);
			uint16_t flags = u8(&in) & 7, next = u8(&in);
			put_desc(&f, q, i, addr, len, flags, next);
			break;
		}
		case OP_PUBLISH: {
			int q = u8(&in) % 3;
			publish(&f, q, u8(&in));
			kick(&f, (uint32_t)q);
			break;
		}
		case OP_PACKET:
			op_packet(&f, &in);
			break;
		case OP_RXPOST: {
			uint32_t slot = u8(&in) % NSLOT, len = u16(&in) % SLOTSZ;
			uint16_t d = (uint16_t)(slot * 2);
			put_desc(&f, 0, d, BUFS + slot * SLOTSZ, len, VRING_DESC_F_WRITE, 0);
			publish(&f, 0, (uint16_t)(d % f.num[0]));
			kick(&f, 0);
			break;
		}
		case OP_KICK:
			kick(&f, u8(&in) % 4);
			break;
		case OP_POLL:
			CHECK(vsock_host_poll(f.v, 0) >= 0);
			break;
		case OP_MMIO_W: {
			uint32_t off = u16(&in) % VIRTIO_MMIO_WINDOW;
			uint64_t val = u64(&in);
			uint8_t len = (uint8_t)(1u << (u8(&in) % 4));
			virtio_mmio_access(f.d, BASE + off, (uint8_t *)&val, len, true);
			break;
		}
		case OP_MMIO_R: {
			uint64_t val;
			uint32_t off = u16(&in) % VIRTIO_MMIO_WINDOW;
			virtio_mmio_access(f.d, BASE + off, (uint8_t *)&val, 1u << (u8(&in) % 4), false);
			break;
		}
		case OP_AVAIL_IDX: {
			int q = u8(&in) % 3;
			f.avail[q] = u16(&in);
			uint16_t *a = vmm_mem_ptr(&mem, RINGQ(q) + 0x1000, 4);
			__atomic_store_n(&a[1], htole16(f.avail[q]), __ATOMIC_RELEASE);
			break;
		}
		case OP_MISC: {
			uint8_t m = u8(&in);
			if (m % 5 == 0)
				vsock_host_transport_reset(f.v);
			else if (m % 5 == 1)
				driver_init(&f, &in);
			else if (m % 5 == 2)
				(void)vsock_host_unlisten(f.v, m % 5);
			else if (m % 5 == 3)
				(void)!vsock_host_listen(f.v, m % 8, on_accept, &f);
			else
				save_restore(&f, &in);
			break;
		}
		default:
			op_host(&f, &in, op);
			break;
		}
		check_invariants(&f);
	}
	for (int i = 0; i < 4; i++)
		CHECK(vsock_host_poll(f.v, 0) >= 0);
	check_invariants(&f);
	vsock_host_release(f.v);
	for (int i = 0; i < f.nfds; i++)
		close(f.fds[i]);
	return 0;
}

#ifdef FUZZ_VSOCK_SEEDS
/* The seed corpus: a few programs in the input format above. */
static uint8_t sb[4096];
static size_t sn;

static void b8(uint8_t v) { sb[sn++] = v; }
static void b16(uint16_t v) { b8((uint8_t)v); b8((uint8_t)(v >> 8)); }
static void b32(uint32_t v) { b16((uint16_t)v); b16((uint16_t)(v >> 16)); }

static void begin(uint8_t feat)
{
	sn = 0;
	b8(1);                                  /* conn_buf_bytes 8 KiB */
	b8(feat);
	b8(8), b8(8), b8(3);                    /* queues of 256, 256, 8 */
}

static void rxpost(uint8_t slot) { b8(OP_RXPOST), b8(slot), b16(0x1000); }

/* A plain packet: sel 4 (u32 dst_port), shape. */
static void packet(uint8_t shape, uint8_t sport, uint32_t dport, uint8_t op, uint8_t flags,
		   uint16_t plen, uint16_t cut)
{
	b8(OP_PACKET), b8(4), b8(shape), b8(sport), b32(dport), b8(op), b8(flags);
	b32(0), b16(plen), b16(cut);
}

static void save(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *fp = fopen(path, "wb");
	if (!fp || fwrite(sb, 1, sn, fp) != sn || fclose(fp) != 0) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	/* Guest connects to listener 1, data both ways, closes. */
	begin(3);
	for (uint8_t i = 0; i < 4; i++)
		rxpost(i);
	packet(0, 5, 1, VIRTIO_VSOCK_OP_REQUEST, 0, 0, 0);
	packet(1, 5, 1, VIRTIO_VSOCK_OP_RW, 0, 100, 44);
	b8(OP_HWRITE), b8(0), b16(300);
	b8(OP_POLL);
	rxpost(4), rxpost(5);
	packet(0, 5, 1, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0, 0, 0);
	packet(0, 5, 1, VIRTIO_VSOCK_OP_SHUTDOWN, 3, 0, 0);
	b8(OP_POLL);
	save(argv[1], "guest-connect");
	/* Host connects to guest port 5 (host port 49152), guest answers. */
	begin(1);
	for (uint8_t i = 0; i < 4; i++)
		rxpost(i);
	b8(OP_CONNECT), b8(5);
	b8(OP_POLL);
	packet(0, 5, 49152, VIRTIO_VSOCK_OP_RESPONSE, 0, 0, 0);
	b8(OP_HWRITE), b8(0), b16(5000);
	b8(OP_POLL);
	packet(2, 5, 49152, VIRTIO_VSOCK_OP_RW, 0, 2000, 44);
	b8(OP_HREAD), b8(0), b16(4096);
	b8(OP_HSHUT), b8(0), b8(1);
	b8(OP_POLL);
	b8(OP_HCLOSE), b8(0);
	b8(OP_POLL);
	packet(0, 5, 49152, VIRTIO_VSOCK_OP_RST, 0, 0, 0);
	save(argv[1], "host-connect");
	/* A descriptor loop on the tx queue. */
	begin(0);
	b8(OP_DESC), b8(1), b8(0), b8(0), b32(0x9000), b16(44), b8(VRING_DESC_F_NEXT), b8(1);
	b8(OP_DESC), b8(1), b8(1), b8(0), b32(0x9000), b16(44), b8(VRING_DESC_F_NEXT), b8(0);
	b8(OP_PUBLISH), b8(1), b8(0);
	b8(OP_MISC), b8(1), b8(3), b8(8), b8(8), b8(3);  /* reset and start again */
	rxpost(0);
	packet(0, 6, 7, VIRTIO_VSOCK_OP_REQUEST, 0, 0, 0);
	save(argv[1], "ring-loop");
	/* Indirect chains, a transport reset, register pokes. */
	begin(2);
	rxpost(0), rxpost(1);
	packet(2, 7, 2, VIRTIO_VSOCK_OP_REQUEST, 0, 0, 20);
	packet(6, 7, 2, VIRTIO_VSOCK_OP_RW, 0, 300, 60);
	b8(OP_MISC), b8(0);
	b8(OP_MISC), b8(4), b16(0), b8(0);              /* snapshot + restore */
	packet(0, 7, 2, VIRTIO_VSOCK_OP_REQUEST, 0, 0, 0);
	b8(OP_MMIO_R), b16(0x100), b8(3);
	b8(OP_MMIO_W), b16(VIRTIO_MMIO_QUEUE_SEL), b32(1), b32(0), b8(2);
	b8(OP_MMIO_W), b16(VIRTIO_MMIO_QUEUE_READY), b32(0), b32(0), b8(2);
	b8(OP_AVAIL_IDX), b8(0), b16(1000);
	b8(OP_KICK), b8(0);
	save(argv[1], "indirect-misc");
	/* A slow host reader: the socket fills, the ring takes the rest and
	 * wraps while the host drains it in pieces. */
	begin(3);
	for (uint8_t i = 0; i < 8; i++)
		rxpost(i);
	packet(0, 8, 3, VIRTIO_VSOCK_OP_REQUEST, 0, 0, 0);
	for (int i = 0; i < 3; i++) {
		packet(1, 8, 3, VIRTIO_VSOCK_OP_RW, 0, 7000, 44);
		packet(1, 8, 3, VIRTIO_VSOCK_OP_RW, 0, 5000, 44);
		b8(OP_HREAD), b8(0), b16(3000);
		b8(OP_POLL);
		packet(0, 8, 3, VIRTIO_VSOCK_OP_RW, 0, 3000, 0);
		b8(OP_HREAD), b8(0), b16(9000);
		b8(OP_POLL);
	}
	packet(0, 8, 3, VIRTIO_VSOCK_OP_SHUTDOWN, 3, 0, 0);
	b8(OP_HREAD), b8(0), b16(60000);
	b8(OP_POLL);
	save(argv[1], "slow-reader");
	return 0;
}
#endif
