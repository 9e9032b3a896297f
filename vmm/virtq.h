/* virtq.h — the device side of one split virtqueue (virtio 1.x, §2.7).
 *
 * Ownership and call order:
 *   - A struct virtq is embedded in its transport (virtio_mmio.c), which calls
 *     virtq_init() once, writes num/desc_gpa/avail_gpa/used_gpa as the driver
 *     configures the queue, virtq_enable() when the driver sets QueueReady and
 *     virtq_reset() on device reset.  The transport's lock serialises all of
 *     this with the device's use of the queue.
 *   - The device, with that lock held, loops virtq_pop() until it returns 0,
 *     copies out of the chain's readable part (virtq_elem_read) and into its
 *     writable part (virtq_elem_write), returns it with virtq_push(), and
 *     after a batch asks virtq_need_interrupt().
 *
 * Everything in guest memory is hostile.  Indexes, descriptors and lengths
 * are read once into locals and every address goes through vmm_mem_ptr().
 * A malformed ring (avail index running more than num ahead, head or next
 * out of range, a loop, a chain longer than the queue, a readable descriptor
 * after a writable one, a nested or malformed indirect table, an address
 * outside RAM) makes virtq_pop() return -EIO and leaves the queue broken
 * until reset: the transport then sets DEVICE_NEEDS_RESET.  Nothing here
 * allocates, blocks or takes locks.
 *
 * Features: VIRTIO_RING_F_INDIRECT_DESC and VIRTIO_RING_F_EVENT_IDX are
 * supported when negotiated (passed to virtq_enable()).
 */
#ifndef VMM_VIRTQ_H
#define VMM_VIRTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/guest_mem.h"

#define VIRTQ_MAX_SIZE  256     /* largest queue (and longest chain) we accept */

struct virtq {
	/* Written by the transport while the queue is not ready. */
	uint16_t num;                   /* queue size, a power of 2 <= max_num */
	uint16_t max_num;               /* QueueNumMax we offer */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool ready;                     /* set by virtq_enable() */

	/* Private. */
	const struct vmm_mem *mem;
	bool event_idx, indirect, broken;
	uint8_t *desc, *avail, *used;   /* host pointers, valid while ready */
	uint16_t last_avail;            /* next avail ring slot to consume */
	uint16_t used_idx;              /* our copy of used->idx */
	uint16_t signalled_used;        /* used_idx at the last interrupt decision */
	bool pushed;                    /* pushes since the last decision */
};

/* A popped chain: iov[0, n_out) is device-readable, iov[n_out, n_out + n_in)
 * device-writable (the spec puts all readable descriptors first). */
struct virtq_elem {
	uint16_t head;
	uint16_t n_out, n_in;
	uint64_t out_len, in_len;       /* bytes in each part */
	struct iovec iov[VIRTQ_MAX_SIZE];
};

void virtq_init(struct virtq *q, const struct vmm_mem *mem, uint16_t max_num);
/* Back to the reset state: not ready, num 0, addresses 0, indexes 0. */
void virtq_reset(struct virtq *q);
/* Validate num and the three ring addresses against guest RAM and the
 * alignment the spec requires, then mark the queue ready.  `features` are
 * the negotiated feature bits.  0, or -EINVAL (queue stays not ready). */
int virtq_enable(struct virtq *q, uint64_t features) __attribute__((warn_unused_result));

/* Take the next available chain: 1 = *e filled, 0 = nothing available (with
 * EVENT_IDX, avail_event has been updated so the driver kicks on its next
 * add), -EIO = the ring is malformed (queue now broken). */
int virtq_pop(struct virtq *q, struct virtq_elem *e) __attribute__((warn_unused_result));
/* Give back the chain just popped (no push in between), unconsumed. */
void virtq_unpop(struct virtq *q);
/* Return a chain to the driver with `written` bytes written to its writable
 * part (clamped to in_len).  Publishes used->idx with release ordering. */
void virtq_push(struct virtq *q, const struct virtq_elem *e, uint32_t written);
/* After a batch of pushes: must the driver be interrupted?  Honours
 * used_event (EVENT_IDX) or VIRTQ_AVAIL_F_NO_INTERRUPT. */
bool virtq_need_interrupt(struct virtq *q);

/* Copy between a chain and host memory, starting `off` bytes into the
 * readable (read) or writable (write) part.  Return bytes copied, which is
 * less than `len` when the part ends first. */
size_t virtq_elem_read(const struct virtq_elem *e, size_t off, void *dst, size_t len);
size_t virtq_elem_write(const struct virtq_elem *e, size_t off, const void *src, size_t len);
/* Describe [off, off+len) of the readable or writable part as at most `max`
 * iovecs (for readv/writev straight from/to guest memory).  Returns the
 * number of iovecs; *total gets the bytes they cover. */
int virtq_elem_slice(const struct virtq_elem *e, bool writable, size_t off, size_t len,
		     struct iovec *out, int max, size_t *total);

#endif
