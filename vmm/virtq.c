/* virtq.c — split virtqueue, device side: pop chains, copy, push, notify. */
#include "vmm/virtq.h"

#include <endian.h>
#include <errno.h>
#include <linux/virtio_ring.h>
#include <string.h>

/* Ring layout (virtio 1.x §2.7): descriptors are 16 bytes; avail is
 * flags, idx, ring[num], used_event; used is flags, idx, {id, len}[num],
 * avail_event. */
#define DESC_SIZE               16u
#define AVAIL_SIZE(num)         (6ull + 2ull * (num))
#define USED_SIZE(num)          (6ull + 8ull * (num))

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* The guest writes these words concurrently: load/store them as single
 * aligned accesses (alignment is checked in virtq_enable()). */
static inline uint16_t ld16(const uint8_t *p, int order)
{
	return le16toh(__atomic_load_n((const uint16_t *)(const void *)p, order));
}

static inline void st16(uint8_t *p, uint16_t v, int order)
{
	__atomic_store_n((uint16_t *)(void *)p, htole16(v), order);
}

static inline void st32(uint8_t *p, uint32_t v)
{
	__atomic_store_n((uint32_t *)(void *)p, htole32(v), __ATOMIC_RELAXED);
}

void virtq_init(struct virtq *q, const struct vmm_mem *mem, uint16_t max_num)
{
	memset(q, 0, sizeof(*q));
	q->mem = mem;
	q->max_num = max_num > VIRTQ_MAX_SIZE ? VIRTQ_MAX_SIZE : max_num;
}

void virtq_reset(struct virtq *q)
{
	virtq_init(q, q->mem, q->max_num);
}

int virtq_enable(struct virtq *q, uint64_t features)
{
	uint16_t n = q->num;

	if (n == 0 || n > q->max_num || (n & (n - 1)))
		return -EINVAL;
	/* §2.7: descriptor table 16-byte, avail 2-byte, used 4-byte aligned. */
	if ((q->desc_gpa & 15) || (q->avail_gpa & 1) || (q->used_gpa & 3))
		return -EINVAL;
	uint8_t *desc = vmm_mem_ptr(q->mem, q->desc_gpa, (uint64_t)DESC_SIZE * n);
	uint8_t *avail = vmm_mem_ptr(q->mem, q->avail_gpa, AVAIL_SIZE(n));
	uint8_t *used = vmm_mem_ptr(q->mem, q->used_gpa, USED_SIZE(n));
	if (!desc || !avail || !used)
		return -EINVAL;
	q->desc = desc;
	q->avail = avail;
	q->used = used;
	q->event_idx = features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	q->indirect = features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	q->broken = false;
	q->last_avail = 0;
	q->used_idx = 0;
	q->signalled_used = 0;
	q->pushed = false;
	q->ready = true;
	return 0;
}

static int broken(struct virtq *q)
{
	q->broken = true;
	return -EIO;
}

/* Walk the chain at `head` into e.  -1 when it is malformed. */
static int walk_chain(struct virtq *q, uint16_t head, struct virtq_elem *e)
{
	const uint8_t *table = q->desc;
	uint32_t size = q->num, idx = head, seen = 0;
	bool in_indirect = false;

	e->head = head;
	e->n_out = e->n_in = 0;
	e->out_len = e->in_len = 0;
	for (;;) {
		struct desc d;

		/* A chain visits each table entry at most once: more is a loop. */
		if (idx >= size || ++seen > size)
			return -1;
		memcpy(&d, table + (size_t)idx * DESC_SIZE, sizeof(d));
		uint64_t addr = le64toh(d.addr);
		uint32_t len = le32toh(d.len);
		uint16_t flags = le16toh(d.flags);

		if (flags & VRING_DESC_F_INDIRECT) {
			/* One table per chain, never chained on (§2.7.5.3.1). */
			if (!q->indirect || in_indirect || (flags & VRING_DESC_F_NEXT))
				return -1;
			if (len == 0 || len % DESC_SIZE || len / DESC_SIZE > VIRTQ_MAX_SIZE)
				return -1;
			table = vmm_mem_ptr(q->mem, addr, len);
			if (!table)
				return -1;
			size = len / DESC_SIZE;
			idx = 0;
			seen = 0;
			in_indirect = true;
			continue;
		}
		bool writable = flags & VRING_DESC_F_WRITE;
		if (!writable && e->n_in)
			return -1;      /* readable after writable */
		if (len) {
			unsigned n = (unsigned)e->n_out + e->n_in;
			void *p = vmm_mem_ptr(q->mem, addr, len);
			if (!p || n >= VIRTQ_MAX_SIZE)
				return -1;
			e->iov[n].iov_base = p;
			e->iov[n].iov_len = len;
			if (writable) {
				e->n_in++;
				e->in_len += len;
			} else {
				e->n_out++;
				e->out_len += len;
			}
		}
		if (!(flags & VRING_DESC_F_NEXT))
			return 0;
		idx = le16toh(d.next);
	}
}

int virtq_pop(struct virtq *q, struct virtq_elem *e)
{
	if (!q->ready)
		return 0;
	if (q->broken)
		return -EIO;
	/* Acquire: the ring entry and descriptors are read after the index. */
	uint16_t avail_idx = ld16(q->avail + 2, __ATOMIC_ACQUIRE);
	if (avail_idx == q->last_avail) {
		if (!q->event_idx)
			return 0;
		/* Ask for a kick on the next add, then look again: the driver
		 * may have added after our load but before seeing avail_event. */
		st16(q->used + 4 + 8u * q->num, q->last_avail, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = ld16(q->avail + 2, __ATOMIC_ACQUIRE);
		if (avail_idx == q->last_avail)
			return 0;
	}
	if ((uint16_t)(avail_idx - q->last_avail) > q->num)
		return broken(q);
	uint16_t head = ld16(q->avail + 4 + 2u * (q->last_avail & (q->num - 1)), __ATOMIC_RELAXED);
	if (head >= q->num || walk_chain(q, head, e) < 0)
		return broken(q);
	q->last_avail++;
	return 1;
}

void virtq_unpop(struct virtq *q)
{
	q->last_avail--;
}

void virtq_push(struct virtq *q, const struct virtq_elem *e, uint32_t written)
{
	if (!q->ready || q->broken)
		return;
	if (written > e->in_len)
		written = (uint32_t)e->in_len;
	uint8_t *slot = q->used + 4 + 8u * (q->used_idx & (q->num - 1));
	st32(slot, e->head);
	st32(slot + 4, written);
	q->used_idx++;
	/* Release: the element is visible before the index that covers it. */
	st16(q->used + 2, q->used_idx, __ATOMIC_RELEASE);
	q->pushed = true;
}

bool virtq_need_interrupt(struct virtq *q)
{
	if (!q->ready || !q->pushed)
		return false;
	/* Full barrier: used->idx must be visible before we read the driver's
	 * suppression state, or we race with the driver re-enabling it. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint16_t old = q->signalled_used, now = q->used_idx;
	q->signalled_used = now;
	q->pushed = false;
	if (q->event_idx) {
		uint16_t ev = ld16(q->avail + 4 + 2u * q->num, __ATOMIC_RELAXED);
		return (uint16_t)(now - ev - 1) < (uint16_t)(now - old);
	}
	return !(ld16(q->avail, __ATOMIC_RELAXED) & VRING_AVAIL_F_NO_INTERRUPT);
}

/* The iov index range of one part of a chain. */
static void part(const struct virtq_elem *e, bool writable, unsigned *first, unsigned *end)
{
	*first = writable ? e->n_out : 0;
	*end = writable ? (unsigned)e->n_out + e->n_in : e->n_out;
}

static size_t copy(const struct virtq_elem *e, bool writable, size_t off, uint8_t *buf,
		   size_t len, bool to_guest)
{
	unsigned i, end;
	size_t done = 0;

	part(e, writable, &i, &end);
	for (; i < end && done < len; i++) {
		size_t seg = e->iov[i].iov_len;
		if (off >= seg) {
			off -= seg;
			continue;
		}
		size_t n = seg - off < len - done ? seg - off : len - done;
		uint8_t *g = (uint8_t *)e->iov[i].iov_base + off;
		if (to_guest)
			memcpy(g, buf + done, n);
		else
			memcpy(buf + done, g, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t virtq_elem_read(const struct virtq_elem *e, size_t off, void *dst, size_t len)
{
	return copy(e, false, off, dst, len, false);
}

size_t virtq_elem_write(const struct virtq_elem *e, size_t off, const void *src, size_t len)
{
	return copy(e, true, off, (uint8_t *)(uintptr_t)src, len, true);
}

int virtq_elem_slice(const struct virtq_elem *e, bool writable, size_t off, size_t len,
		     struct iovec *out, int max, size_t *total)
{
	unsigned i, end;
	int n = 0;
	size_t done = 0;

	part(e, writable, &i, &end);
	for (; i < end && done < len && n < max; i++) {
		size_t seg = e->iov[i].iov_len;
		if (off >= seg) {
			off -= seg;
			continue;
		}
		size_t take = seg - off < len - done ? seg - off : len - done;
		out[n].iov_base = (uint8_t *)e->iov[i].iov_base + off;
		out[n].iov_len = take;
		n++;
		done += take;
		off = 0;
	}
	*total = done;
	return n;
}
