/* test_virtq.c — split virtqueue: chains, copies, used ring, notification
 * suppression, and malformed rings refused without crashing. */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <string.h>

#include "tests/fake_driver.h"
#include "tests/unit/ut.h"
#include "vmm/virtq.h"

#define DESC    0x10000ull
#define AVAIL   0x11000ull
#define USED    0x12000ull
#define BUF     0x100000ull
#define F(b)    (1ull << (b))

struct tq {
	struct vmm_mem mem;
	struct virtq q;
	uint16_t avail_idx;
};

static void tq_init(struct tq *t, uint16_t num, uint64_t features)
{
	UT_EQ(vmm_mem_init(&t->mem, 16 << 20), 0);
	virtq_init(&t->q, &t->mem, 256);
	t->q.num = num;
	t->q.desc_gpa = DESC;
	t->q.avail_gpa = AVAIL;
	t->q.used_gpa = USED;
	t->avail_idx = 0;
	UT_EQ(virtq_enable(&t->q, features), 0);
}

static void set_desc(struct tq *t, uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint8_t *d = vmm_mem_ptr(&t->mem, table + 16ull * i, 16);
	fake_desc_write(d, addr, len, flags, next);
}

static uint16_t *avail_ring(struct tq *t) { return vmm_mem_ptr(&t->mem, AVAIL, 6 + 2 * 256); }
static uint16_t *used16(struct tq *t) { return vmm_mem_ptr(&t->mem, USED, 6 + 8 * 256); }
static uint32_t *used32(struct tq *t) { return vmm_mem_ptr(&t->mem, USED, 6 + 8 * 256); }

static void post(struct tq *t, uint16_t head)
{
	uint16_t *a = avail_ring(t);
	a[2 + (t->avail_idx % t->q.num)] = htole16(head);
	t->avail_idx++;
	a[1] = htole16(t->avail_idx);
}

UT_TEST(virtq_pop_split_chain)
{
	struct tq t;
	struct virtq_elem e;
	tq_init(&t, 8, F(VIRTIO_F_VERSION_1));
	memcpy(vmm_mem_ptr(&t.mem, BUF, 4), "abcd", 4);
	memcpy(vmm_mem_ptr(&t.mem, BUF + 0x100, 3), "efg", 3);
	set_desc(&t, DESC, 3, BUF, 4, VRING_DESC_F_NEXT, 5);
	set_desc(&t, DESC, 5, BUF + 0x100, 3, VRING_DESC_F_NEXT, 1);
	set_desc(&t, DESC, 1, BUF + 0x200, 5, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	set_desc(&t, DESC, 0, BUF + 0x300, 5, VRING_DESC_F_WRITE, 0);
	UT_EQ(virtq_pop(&t.q, &e), 0);
	post(&t, 3);
	UT_EQ(virtq_pop(&t.q, &e), 1);
	UT_EQ(e.head, 3);
	UT_EQ(e.n_out, 2);
	UT_EQ(e.n_in, 2);
	UT_EQ(e.out_len, 7);
	UT_EQ(e.in_len, 10);
	char buf[16] = { 0 };
	UT_EQ(virtq_elem_read(&e, 2, buf, 16), 5);      /* spans both readable descs */
	UT_ASSERT(memcmp(buf, "cdefg", 5) == 0);
	UT_EQ(virtq_elem_write(&e, 3, "0123456789", 10), 7);
	UT_ASSERT(memcmp(vmm_mem_ptr(&t.mem, BUF + 0x203, 2), "01", 2) == 0);
	UT_ASSERT(memcmp(vmm_mem_ptr(&t.mem, BUF + 0x300, 5), "23456", 5) == 0);
	/* Readable memory is never written. */
	UT_ASSERT(memcmp(vmm_mem_ptr(&t.mem, BUF, 4), "abcd", 4) == 0);
	struct iovec iov[4];
	size_t total;
	UT_EQ(virtq_elem_slice(&e, true, 4, 100, iov, 4, &total), 2);
	UT_EQ(total, 6);
	UT_EQ(iov[0].iov_len, 1);
	UT_EQ(virtq_elem_slice(&e, false, 0, 5, iov, 1, &total), 1);      /* max iovecs */
	UT_EQ(total, 4);
	virtq_push(&t.q, &e, 1000);                     /* clamped to in_len */
	UT_EQ(le16toh(used16(&t)[1]), 1);
	UT_EQ(le32toh(used32(&t)[1]), 3);
	UT_EQ(le32toh(used32(&t)[2]), 10);
	UT_EQ(virtq_pop(&t.q, &e), 0);
	vmm_mem_release(&t.mem);
}

UT_TEST(virtq_unpop_and_wrap)
{
	struct tq t;
	struct virtq_elem e;
	tq_init(&t, 4, F(VIRTIO_F_VERSION_1));
	/* Start both indexes just below the 16-bit wrap. */
	t.q.last_avail = 65534;
	t.q.used_idx = 65534;
	t.avail_idx = 65534;
	for (int i = 0; i < 4; i++)
		set_desc(&t, DESC, (uint16_t)i, BUF + 16u * i, 16, VRING_DESC_F_WRITE, 0);
	for (int i = 0; i < 4; i++)
		post(&t, (uint16_t)i);
	UT_EQ(virtq_pop(&t.q, &e), 1);
	UT_EQ(e.head, 0);
	virtq_unpop(&t.q);
	for (int i = 0; i < 4; i++) {
		UT_EQ(virtq_pop(&t.q, &e), 1);
		UT_EQ(e.head, i);
		virtq_push(&t.q, &e, (uint32_t)i);
	}
	UT_EQ(virtq_pop(&t.q, &e), 0);
	UT_EQ(le16toh(used16(&t)[1]), 2);               /* 65534 + 4 wrapped */
	vmm_mem_release(&t.mem);
}

UT_TEST(virtq_enable_validates)
{
	struct tq t;
	tq_init(&t, 8, 0);
	struct { uint16_t num; uint64_t d, a, u; } bad[] = {
		{ 0, DESC, AVAIL, USED }, { 6, DESC, AVAIL, USED }, { 512, DESC, AVAIL, USED },
		{ 8, DESC + 8, AVAIL, USED }, { 8, DESC, AVAIL + 1, USED }, { 8, DESC, AVAIL, USED + 2 },
		{ 8, (16ull << 20) - 16, AVAIL, USED }, { 8, DESC, ~0ull - 1, USED },
		{ 8, DESC, AVAIL, (16ull << 20) - 8 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		virtq_reset(&t.q);
		t.q.num = bad[i].num;
		t.q.desc_gpa = bad[i].d;
		t.q.avail_gpa = bad[i].a;
		t.q.used_gpa = bad[i].u;
		UT_EQ(virtq_enable(&t.q, 0), -EINVAL);
		UT_ASSERT(!t.q.ready);
	}
	vmm_mem_release(&t.mem);
}

/* Each malformed chain must be refused with -EIO and stay refused. */
static void expect_broken(struct tq *t, uint16_t head)
{
	struct virtq_elem e;
	post(t, head);
	UT_EQ(virtq_pop(&t->q, &e), -EIO);
	UT_EQ(virtq_pop(&t->q, &e), -EIO);
	virtq_push(&t->q, &e, 0);                       /* ignored once broken */
	UT_EQ(le16toh(used16(t)[1]), 0);
}

UT_TEST(virtq_rejects_loops_and_bad_indexes)
{
	struct tq t;
	tq_init(&t, 8, 0);                              /* loop 0 -> 1 -> 0 */
	set_desc(&t, DESC, 0, BUF, 4, VRING_DESC_F_NEXT, 1);
	set_desc(&t, DESC, 1, BUF, 4, VRING_DESC_F_NEXT, 0);
	expect_broken(&t, 0);
	vmm_mem_release(&t.mem);

	tq_init(&t, 8, 0);                              /* self loop */
	set_desc(&t, DESC, 2, BUF, 4, VRING_DESC_F_NEXT, 2);
	expect_broken(&t, 2);
	vmm_mem_release(&t.mem);

	tq_init(&t, 8, 0);                              /* loop of empty buffers */
	set_desc(&t, DESC, 3, BUF, 0, VRING_DESC_F_NEXT, 4);
	set_desc(&t, DESC, 4, BUF, 0, VRING_DESC_F_NEXT, 3);
	expect_broken(&t, 3);
	vmm_mem_release(&t.mem);

	tq_init(&t, 8, 0);                              /* next out of range */
	set_desc(&t, DESC, 0, BUF, 4, VRING_DESC_F_NEXT, 8);
	expect_broken(&t, 0);
	vmm_mem_release(&t.mem);

	tq_init(&t, 8, 0);                              /* head out of range */
	expect_broken(&t, 8);
	vmm_mem_release(&t.mem);

	tq_init(&t, 8, 0);                              /* avail idx 9 ahead of 0 */
	struct virtq_elem e;
	avail_ring(&t)[1] = htole16(9);
	UT_EQ(virtq_pop(&t.q, &e), -EIO);
	vmm_mem_release(&t.mem);
}

UT_TEST(virtq_rejects_bad_buffers)
{
	struct tq t;
	uint64_t top = 16ull << 20;
	struct { uint64_t addr; uint32_t len; } bad[] = {
		{ top, 1 }, { top - 4, 8 }, { 0, 0xffffffffu }, { ~0ull - 2, 16 }, { 1ull << 40, 4 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tq_init(&t, 8, 0);
		set_desc(&t, DESC, 0, bad[i].addr, bad[i].len, 0, 0);
		expect_broken(&t, 0);
		vmm_mem_release(&t.mem);
	}
	/* Readable after writable. */
	tq_init(&t, 8, 0);
	set_desc(&t, DESC, 0, BUF, 4, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(&t, DESC, 1, BUF, 4, 0, 0);
	expect_broken(&t, 0);
	vmm_mem_release(&t.mem);
	/* A buffer exactly at the end of RAM is fine. */
	tq_init(&t, 8, 0);
	struct virtq_elem e;
	set_desc(&t, DESC, 0, top - 8, 8, 0, 0);
	post(&t, 0);
	UT_EQ(virtq_pop(&t.q, &e), 1);
	vmm_mem_release(&t.mem);
}

UT_TEST(virtq_indirect)
{
	struct tq t;
	struct virtq_elem e;
	uint64_t it = 0x20008;                          /* any alignment */

	tq_init(&t, 8, F(VIRTIO_RING_F_INDIRECT_DESC));
	set_desc(&t, it, 0, BUF, 10, VRING_DESC_F_NEXT, 2);
	set_desc(&t, it, 2, BUF + 0x100, 20, VRING_DESC_F_WRITE, 0);
	set_desc(&t, DESC, 4, BUF + 0x40, 3, VRING_DESC_F_NEXT, 5);  /* direct, then indirect */
	set_desc(&t, DESC, 5, it, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	post(&t, 4);
	UT_EQ(virtq_pop(&t.q, &e), 1);
	UT_EQ(e.n_out, 2);
	UT_EQ(e.n_in, 1);
	UT_EQ(e.out_len, 13);
	UT_EQ(e.in_len, 20);
	vmm_mem_release(&t.mem);

	/* Not negotiated. */
	tq_init(&t, 8, 0);
	set_desc(&t, it, 0, BUF, 10, 0, 0);
	set_desc(&t, DESC, 0, it, 16, VRING_DESC_F_INDIRECT, 0);
	expect_broken(&t, 0);
	vmm_mem_release(&t.mem);

	/* Malformed tables: nested, with NEXT, odd length, too long, loop. */
	for (int k = 0; k < 5; k++) {
		tq_init(&t, 8, F(VIRTIO_RING_F_INDIRECT_DESC));
		uint32_t len = 2 * 16;
		uint16_t flags = VRING_DESC_F_INDIRECT;
		set_desc(&t, it, 0, BUF, 10, VRING_DESC_F_NEXT, 1);
		set_desc(&t, it, 1, BUF, 10, 0, 0);
		if (k == 0)
			set_desc(&t, it, 1, it, 32, VRING_DESC_F_INDIRECT, 0);
		if (k == 1)
			flags |= VRING_DESC_F_NEXT;
		if (k == 2)
			len = 24;
		if (k == 3)
			len = 257 * 16;
		if (k == 4)
			set_desc(&t, it, 1, BUF, 10, VRING_DESC_F_NEXT, 0);
		set_desc(&t, DESC, 0, it, len, flags, 1);
		set_desc(&t, DESC, 1, BUF, 4, 0, 0);
		expect_broken(&t, 0);
		vmm_mem_release(&t.mem);
	}
}

UT_TEST(virtq_chain_longer_than_queue)
{
	struct tq t;
	uint64_t it = 0x30000;
	/* An indirect table of 256 entries chained to its end is fine... */
	tq_init(&t, 4, F(VIRTIO_RING_F_INDIRECT_DESC));
	for (int i = 0; i < 256; i++)
		set_desc(&t, it, (uint16_t)i, BUF, 1, i < 255 ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	set_desc(&t, DESC, 0, it, 256 * 16, VRING_DESC_F_INDIRECT, 0);
	struct virtq_elem e;
	post(&t, 0);
	UT_EQ(virtq_pop(&t.q, &e), 1);
	UT_EQ(e.n_out, 256);
	vmm_mem_release(&t.mem);
	/* ...but a direct prefix plus 256 more segments is too long. */
	tq_init(&t, 4, F(VIRTIO_RING_F_INDIRECT_DESC));
	for (int i = 0; i < 256; i++)
		set_desc(&t, it, (uint16_t)i, BUF, 1, i < 255 ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	set_desc(&t, DESC, 0, BUF, 1, VRING_DESC_F_NEXT, 1);
	set_desc(&t, DESC, 1, it, 256 * 16, VRING_DESC_F_INDIRECT, 0);
	expect_broken(&t, 0);
	vmm_mem_release(&t.mem);
}

UT_TEST(virtq_no_interrupt_flag)
{
	struct tq t;
	struct virtq_elem e;
	tq_init(&t, 8, 0);
	UT_ASSERT(!virtq_need_interrupt(&t.q));         /* nothing pushed */
	set_desc(&t, DESC, 0, BUF, 4, VRING_DESC_F_WRITE, 0);
	post(&t, 0);
	UT_EQ(virtq_pop(&t.q, &e), 1);
	virtq_push(&t.q, &e, 4);
	UT_ASSERT(virtq_need_interrupt(&t.q));
	UT_ASSERT(!virtq_need_interrupt(&t.q));         /* already decided */
	avail_ring(&t)[0] = htole16(VRING_AVAIL_F_NO_INTERRUPT);
	post(&t, 0);
	UT_EQ(virtq_pop(&t.q, &e), 1);
	virtq_push(&t.q, &e, 4);
	UT_ASSERT(!virtq_need_interrupt(&t.q));
	vmm_mem_release(&t.mem);
}

UT_TEST(virtq_event_idx)
{
	struct tq t;
	struct virtq_elem e;
	tq_init(&t, 8, F(VIRTIO_RING_F_EVENT_IDX));
	uint16_t *used_event = &avail_ring(&t)[2 + 8];
	uint16_t *avail_event = &used16(&t)[2 + 4 * 8];
	for (int i = 0; i < 8; i++)
		set_desc(&t, DESC, (uint16_t)i, BUF, 4, VRING_DESC_F_WRITE, 0);

	/* Empty pop publishes avail_event = last_avail. */
	*avail_event = htole16(77);
	UT_EQ(virtq_pop(&t.q, &e), 0);
	UT_EQ(le16toh(*avail_event), 0);

	/* Driver wants an interrupt when used passes index 2 (used_event = 2). */
	*used_event = htole16(2);
	for (int i = 0; i < 4; i++)
		post(&t, (uint16_t)i);
	for (int i = 0; i < 2; i++) {                   /* used 0 -> 2 */
		UT_EQ(virtq_pop(&t.q, &e), 1);
		virtq_push(&t.q, &e, 0);
	}
	UT_ASSERT(!virtq_need_interrupt(&t.q));         /* entry 2 not used yet */
	UT_EQ(virtq_pop(&t.q, &e), 1);
	virtq_push(&t.q, &e, 0);                        /* used 3: passed 2 */
	UT_ASSERT(virtq_need_interrupt(&t.q));
	UT_EQ(virtq_pop(&t.q, &e), 1);
	virtq_push(&t.q, &e, 0);
	UT_ASSERT(!virtq_need_interrupt(&t.q));         /* event stale: no more */
	*used_event = htole16(4);
	post(&t, 5);
	UT_EQ(virtq_pop(&t.q, &e), 1);
	virtq_push(&t.q, &e, 0);
	UT_ASSERT(virtq_need_interrupt(&t.q));
	UT_EQ(virtq_pop(&t.q, &e), 0);
	UT_EQ(le16toh(*avail_event), 5);
	vmm_mem_release(&t.mem);
}
