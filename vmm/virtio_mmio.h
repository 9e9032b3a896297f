/* virtio_mmio.h — the virtio-mmio transport, version 2 (virtio 1.x §4.2):
 * registers, feature negotiation, the status state machine, queue setup,
 * interrupts (irqfd) and queue notifications (ioeventfd).
 *
 * Ownership and call order:
 *   virtio_mmio_init()   the caller owns the struct (usually embedded in a
 *                        device); creates one kick eventfd per queue and the
 *                        interrupt eventfd, and with vmfd >= 0 registers the
 *                        latter with KVM_IRQFD for `gsi`.
 *   virtio_mmio_access() from the vCPU thread for every KVM_EXIT_MMIO in
 *                        [base, base + VIRTIO_MMIO_WINDOW).  Takes the lock.
 *   virtio_mmio_release() after the vCPU and device threads have stopped;
 *                        unregisters from KVM and closes every fd.
 *
 * Threads and the lock: the transport's mutex serialises register accesses
 * with the device's work.  The device's callbacks (virtio_dev_ops) are
 * called with it held; the device holds it (virtio_mmio_lock()) while it
 * touches its queues from its own thread.  InterruptStatus/InterruptACK are
 * lock-free so the guest's interrupt handler never waits for the device.
 *
 * Notifications: when the driver sets QueueReady, with vmfd >= 0 the queue's
 * kick eventfd is registered with KVM_IOEVENTFD (4 bytes at base + 0x50,
 * datamatch = queue index), so kicks never leave the kernel.  A QueueNotify
 * write that does reach user space (no KVM, or registration failed) writes
 * the same eventfd.  The device waits on virtio_mmio_kick_fd() (poll/epoll)
 * and then calls virtio_mmio_process(), which drains the eventfds and calls
 * ops->queue_notify for each kicked queue.  Without a device thread (unit
 * tests, fuzzing) call virtio_mmio_process() directly: same code path.
 *
 * Interrupts: virtio_mmio_interrupt() sets InterruptStatus bits and writes
 * the interrupt eventfd (an irqfd when vmfd >= 0; otherwise it only counts,
 * and tests may poll virtio_mmio_irq_fd()).
 *
 * Hostile driver: wrong access sizes are ignored (reads return 0), queue
 * writes while a queue is ready are ignored, FEATURES_OK is refused unless
 * VIRTIO_F_VERSION_1 is accepted and nothing unoffered is, DRIVER_OK is
 * refused before FEATURES_OK, and a queue whose size or rings are invalid
 * sets DEVICE_NEEDS_RESET (as does a malformed ring found by the device).
 */
#ifndef VMM_VIRTIO_MMIO_H
#define VMM_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/guest_mem.h"
#include "vmm/virtq.h"

#define VIRTIO_MMIO_WINDOW      0x1000u     /* bytes of guest-physical space */
#define VIRTIO_MMIO_MAX_QUEUES  8
#define VIRTIO_MMIO_VENDOR      0x4b524655u /* "UFRK" */

/* What a device tells the transport.  Callbacks run with the lock held;
 * config_read/config_write get ranges already clipped to config_len. */
struct virtio_dev_ops {
	uint32_t device_id;
	uint64_t features;              /* device-specific bits; the transport
					 * adds VERSION_1, EVENT_IDX, INDIRECT_DESC */
	uint16_t num_queues;            /* <= VIRTIO_MMIO_MAX_QUEUES */
	uint16_t queue_max;             /* QueueNumMax, <= VIRTQ_MAX_SIZE */
	uint32_t config_len;            /* bytes of config space at 0x100 */
	void (*config_read)(void *opaque, uint32_t off, uint8_t *data, uint32_t len);
	void (*config_write)(void *opaque, uint32_t off, const uint8_t *data, uint32_t len); /* may be NULL */
	void (*queue_notify)(void *opaque, uint16_t qidx);
	void (*activate)(void *opaque);  /* DRIVER_OK accepted; may be NULL */
	void (*reset)(void *opaque);     /* before the transport resets its queues */
};

struct virtio_mmio_dev {
	pthread_mutex_t lock;
	const struct virtio_dev_ops *ops;
	void *opaque;
	const struct vmm_mem *mem;
	uint64_t base;
	int gsi, vmfd;

	/* Register state, under the lock. */
	uint32_t status;
	uint32_t dev_feat_sel, drv_feat_sel, queue_sel;
	uint64_t driver_features;
	uint32_t config_gen;
	struct virtq vq[VIRTIO_MMIO_MAX_QUEUES];
	bool ioevent_on[VIRTIO_MMIO_MAX_QUEUES];

	uint32_t isr;                   /* atomic: InterruptStatus */
	uint64_t irq_count;             /* atomic: interrupts raised */
	int irq_fd;                     /* eventfd; an irqfd when vmfd >= 0 */
	bool irqfd_on;
	int kick_fd[VIRTIO_MMIO_MAX_QUEUES];
};

int virtio_mmio_init(struct virtio_mmio_dev *d, const struct vmm_mem *mem, uint64_t base_gpa,
		     int gsi, int vmfd, const struct virtio_dev_ops *ops, void *opaque)
	__attribute__((warn_unused_result));
void virtio_mmio_release(struct virtio_mmio_dev *d);

bool virtio_mmio_handles(const struct virtio_mmio_dev *d, uint64_t gpa);
/* One guest access of `len` (1, 2, 4 or 8) bytes at `gpa`; reads fill data. */
void virtio_mmio_access(struct virtio_mmio_dev *d, uint64_t gpa, uint8_t *data, uint32_t len,
			bool is_write);
/* The same with a void * first argument (matches vmm_mmio_fn in vm.h). */
void virtio_mmio_access_fn(void *dev, uint64_t gpa, uint8_t *data, uint32_t len, bool is_write);

/* Device side. */
void virtio_mmio_lock(struct virtio_mmio_dev *d);
void virtio_mmio_unlock(struct virtio_mmio_dev *d);
/* Queue qidx if the device may use it now (ready, DRIVER_OK, not FAILED or
 * NEEDS_RESET), else NULL.  Lock held. */
struct virtq *virtio_mmio_queue(struct virtio_mmio_dev *d, uint16_t qidx);
/* Drain the kick eventfds and call ops->queue_notify for each kicked queue.
 * Returns the number of queues notified.  _locked: lock already held. */
int virtio_mmio_process(struct virtio_mmio_dev *d);
int virtio_mmio_process_locked(struct virtio_mmio_dev *d);
/* Make the next virtio_mmio_process() notify qidx (the device's way of
 * coming back to a queue it left with work pending). */
void virtio_mmio_kick(struct virtio_mmio_dev *d, uint16_t qidx);
/* Set InterruptStatus bits (VIRTIO_MMIO_INT_VRING / _CONFIG) and signal. */
void virtio_mmio_interrupt(struct virtio_mmio_dev *d, uint32_t bits);
/* Interrupt for queue qidx's used ring if the driver wants one.  Lock held. */
void virtio_mmio_notify_used(struct virtio_mmio_dev *d, uint16_t qidx);
/* The driver broke the protocol: set DEVICE_NEEDS_RESET (and tell it with a
 * config interrupt once DRIVER_OK).  Lock held. */
void virtio_mmio_set_needs_reset(struct virtio_mmio_dev *d);
/* Config space changed: bump ConfigGeneration and interrupt.  Lock held. */
void virtio_mmio_config_changed(struct virtio_mmio_dev *d);

int virtio_mmio_kick_fd(const struct virtio_mmio_dev *d, uint16_t qidx);
int virtio_mmio_irq_fd(const struct virtio_mmio_dev *d);

/* Transport and queue state for snapshots (the device's own state is the
 * device's business).  Save with the vCPUs paused; restore into a device
 * made by virtio_mmio_init() over the restored guest memory, before the
 * vCPUs run: it validates the rings again (-EINVAL leaves the device reset),
 * re-registers ioeventfds and kicks every ready queue once so work the
 * driver queued before the snapshot is seen. */
struct virtio_mmio_state {
	uint32_t status, dev_feat_sel, drv_feat_sel, queue_sel, config_gen, isr;
	uint64_t driver_features;
	struct virtio_mmio_queue_state {
		uint64_t desc, avail, used;
		uint16_t num, last_avail, used_idx, signalled_used;
		uint8_t ready;
	} q[VIRTIO_MMIO_MAX_QUEUES];
};

void virtio_mmio_save(struct virtio_mmio_dev *d, struct virtio_mmio_state *s);
int virtio_mmio_restore(struct virtio_mmio_dev *d, const struct virtio_mmio_state *s)
	__attribute__((warn_unused_result));

#endif
