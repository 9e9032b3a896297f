/* test_virtio_mmio.c — the virtio-mmio v2 transport driven by register
 * accesses, with a dummy device: identification, feature negotiation,
 * the status machine, queue setup, reset, interrupts and notifications. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/ut.h"
#include "vmm/virtio_mmio.h"

#define BASE 0xd0000000ull

struct dummy {
	int resets, activates;
	int notified[VIRTIO_MMIO_MAX_QUEUES];
	uint8_t cfg[6];
};

static void d_cfg_read(void *o, uint32_t off, uint8_t *data, uint32_t len)
{
	memcpy(data, ((struct dummy *)o)->cfg + off, len);
}

static void d_cfg_write(void *o, uint32_t off, const uint8_t *data, uint32_t len)
{
	memcpy(((struct dummy *)o)->cfg + off, data, len);
}

static void d_notify(void *o, uint16_t q) { ((struct dummy *)o)->notified[q]++; }
static void d_reset(void *o) { ((struct dummy *)o)->resets++; }
static void d_activate(void *o) { ((struct dummy *)o)->activates++; }

static const struct virtio_dev_ops dummy_ops = {
	.device_id = 42,
	.features = 1ull << 3,
	.num_queues = 2,
	.queue_max = 64,
	.config_len = 6,
	.config_read = d_cfg_read,
	.config_write = d_cfg_write,
	.queue_notify = d_notify,
	.activate = d_activate,
	.reset = d_reset,
};

struct env {
	struct vmm_mem mem;
	struct virtio_mmio_dev d;
	struct dummy dev;
};

static uint32_t rd(struct env *e, uint32_t off)
{
	uint32_t v;
	virtio_mmio_access(&e->d, BASE + off, (uint8_t *)&v, 4, false);
	return le32toh(v);
}

static void wr(struct env *e, uint32_t off, uint32_t v)
{
	v = htole32(v);
	virtio_mmio_access(&e->d, BASE + off, (uint8_t *)&v, 4, true);
}

static void env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	UT_EQ(vmm_mem_init(&e->mem, 16 << 20), 0);
	memcpy(e->dev.cfg, "\x01\x02\x03\x04\x05\x06", 6);
	UT_EQ(virtio_mmio_init(&e->d, &e->mem, BASE, 5, -1, &dummy_ops, &e->dev), 0);
}

static void env_release(struct env *e)
{
	virtio_mmio_release(&e->d);
	vmm_mem_release(&e->mem);
}

static void negotiate(struct env *e, uint64_t f)
{
	wr(e, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	wr(e, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	wr(e, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(e, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
	wr(e, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(e, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
	wr(e, VIRTIO_MMIO_STATUS, rd(e, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_FEATURES_OK);
}

static void setup_queue(struct env *e, uint32_t q, uint32_t num, uint64_t base)
{
	wr(e, VIRTIO_MMIO_QUEUE_SEL, q);
	wr(e, VIRTIO_MMIO_QUEUE_NUM, num);
	wr(e, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)base);
	wr(e, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(base >> 32));
	wr(e, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)(base + 0x1000));
	wr(e, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 0);
	wr(e, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)(base + 0x2000));
	wr(e, VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
	wr(e, VIRTIO_MMIO_QUEUE_READY, 1);
}

#define V1 (1ull << VIRTIO_F_VERSION_1)

UT_TEST(mmio_identity_registers)
{
	struct env e;
	env_init(&e);
	UT_EQ(rd(&e, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	UT_EQ(rd(&e, VIRTIO_MMIO_VERSION), 2);
	UT_EQ(rd(&e, VIRTIO_MMIO_DEVICE_ID), 42);
	UT_EQ(rd(&e, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	wr(&e, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint32_t lo = rd(&e, VIRTIO_MMIO_DEVICE_FEATURES);
	UT_ASSERT(lo & (1u << 3));
	UT_ASSERT(lo & (1u << VIRTIO_RING_F_EVENT_IDX));
	wr(&e, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	UT_EQ(rd(&e, VIRTIO_MMIO_DEVICE_FEATURES), 1);  /* VERSION_1 = bit 32 */
	wr(&e, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 7);
	UT_EQ(rd(&e, VIRTIO_MMIO_DEVICE_FEATURES), 0);
	wr(&e, VIRTIO_MMIO_MAGIC_VALUE, 0);             /* read-only */
	UT_EQ(rd(&e, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	UT_EQ(rd(&e, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffffu);
	wr(&e, VIRTIO_MMIO_QUEUE_SEL, 1);
	UT_EQ(rd(&e, VIRTIO_MMIO_QUEUE_NUM_MAX), 64);
	wr(&e, VIRTIO_MMIO_QUEUE_SEL, 2);               /* no such queue */
	UT_EQ(rd(&e, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	UT_ASSERT(virtio_mmio_handles(&e.d, BASE + 0xfff));
	UT_ASSERT(!virtio_mmio_handles(&e.d, BASE + 0x1000));
	UT_ASSERT(!virtio_mmio_handles(&e.d, BASE - 1));
	env_release(&e);
}

UT_TEST(mmio_bad_access_sizes)
{
	struct env e;
	env_init(&e);
	uint8_t b[8];
	memset(b, 0xaa, 8);
	virtio_mmio_access(&e.d, BASE + VIRTIO_MMIO_MAGIC_VALUE, b, 2, false);
	UT_EQ(b[0], 0);
	UT_EQ(b[1], 0);
	UT_EQ(b[2], 0xaa);
	memset(b, 0xaa, 8);
	virtio_mmio_access(&e.d, BASE + VIRTIO_MMIO_MAGIC_VALUE + 1, b, 4, false);   /* unaligned */
	UT_EQ(b[0], 0);
	virtio_mmio_access(&e.d, BASE + 0xffe, b, 4, false);    /* crosses the window */
	virtio_mmio_access(&e.d, BASE + 0x10, b, 0, false);
	virtio_mmio_access(&e.d, BASE + 0x10, b, 9, true);      /* over 8: ignored */
	memset(b, 0xff, 8);
	virtio_mmio_access(&e.d, BASE + VIRTIO_MMIO_STATUS, b, 1, true);  /* ignored */
	UT_EQ(rd(&e, VIRTIO_MMIO_STATUS), 0);
	virtio_mmio_access(&e.d, BASE + VIRTIO_MMIO_STATUS, b, 8, true);
	UT_EQ(rd(&e, VIRTIO_MMIO_STATUS), 0);
	env_release(&e);
}

UT_TEST(mmio_config_space)
{
	struct env e;
	env_init(&e);
	uint8_t b[8];
	memset(b, 0xaa, 8);
	virtio_mmio_access(&e.d, BASE + 0x100, b, 4, false);
	UT_ASSERT(memcmp(b, "\x01\x02\x03\x04", 4) == 0);
	virtio_mmio_access(&e.d, BASE + 0x104, b, 4, false);    /* 2 in range, 2 past */
	UT_ASSERT(memcmp(b, "\x05\x06\x00\x00", 4) == 0);
	virtio_mmio_access(&e.d, BASE + 0x105, b, 1, false);
	UT_EQ(b[0], 6);
	virtio_mmio_access(&e.d, BASE + 0x200, b, 8, false);
	UT_ASSERT(memcmp(b, "\0\0\0\0\0\0\0\0", 8) == 0);
	virtio_mmio_access(&e.d, BASE + 0x105, (uint8_t *)"\x99\x98", 2, true);  /* clipped */
	UT_EQ(e.dev.cfg[5], 0x99);
	UT_EQ(rd(&e, VIRTIO_MMIO_CONFIG_GENERATION), 0);
	virtio_mmio_lock(&e.d);
	virtio_mmio_config_changed(&e.d);
	virtio_mmio_unlock(&e.d);
	UT_EQ(rd(&e, VIRTIO_MMIO_CONFIG_GENERATION), 1);
	env_release(&e);
}

UT_TEST(mmio_feature_negotiation)
{
	struct env e;
	env_init(&e);
	negotiate(&e, 1ull << 3);                       /* no VERSION_1: refused */
	UT_ASSERT(!(rd(&e, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK));
	wr(&e, VIRTIO_MMIO_STATUS, rd(&e, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_DRIVER_OK);
	UT_ASSERT(!(rd(&e, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK));
	UT_EQ(e.dev.activates, 0);
	wr(&e, VIRTIO_MMIO_STATUS, 0);
	negotiate(&e, V1 | (1ull << 5));                /* bit 5 never offered */
	UT_ASSERT(!(rd(&e, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK));
	wr(&e, VIRTIO_MMIO_STATUS, 0);
	negotiate(&e, V1 | (1ull << 3));
	UT_ASSERT(rd(&e, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	UT_EQ(e.d.driver_features, V1 | (1ull << 3));
	/* Features are frozen after FEATURES_OK. */
	wr(&e, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(&e, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	UT_EQ(e.d.driver_features, V1 | (1ull << 3));
	/* The driver cannot clear bits except by reset. */
	wr(&e, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	UT_ASSERT(rd(&e, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK);
	wr(&e, VIRTIO_MMIO_STATUS, rd(&e, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_DRIVER_OK);
	UT_ASSERT(rd(&e, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK);
	UT_EQ(e.dev.activates, 1);
	env_release(&e);
}

UT_TEST(mmio_queue_setup_and_reset)
{
	struct env e;
	env_init(&e);
	wr(&e, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(&e, VIRTIO_MMIO_QUEUE_NUM, 16);
	wr(&e, VIRTIO_MMIO_QUEUE_READY, 1);             /* before FEATURES_OK: ignored */
	UT_EQ(rd(&e, VIRTIO_MMIO_QUEUE_READY), 0);
	negotiate(&e, V1);
	setup_queue(&e, 0, 16, 0x10000);
	setup_queue(&e, 1, 64, 0x20000);
	UT_EQ(rd(&e, VIRTIO_MMIO_QUEUE_READY), 1);
	UT_ASSERT(!(rd(&e, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET));
	/* Layout writes to a live queue are ignored. */
	wr(&e, VIRTIO_MMIO_QUEUE_NUM, 4);
	wr(&e, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x50000);
	UT_EQ(e.d.vq[1].num, 64);
	UT_EQ(e.d.vq[1].desc_gpa, 0x20000);
	UT_EQ(rd(&e, VIRTIO_MMIO_QUEUE_DESC_LOW), 0x20000);
	wr(&e, VIRTIO_MMIO_STATUS, rd(&e, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_DRIVER_OK);
	virtio_mmio_interrupt(&e.d, VIRTIO_MMIO_INT_VRING);
	UT_EQ(rd(&e, VIRTIO_MMIO_INTERRUPT_STATUS), 1);
	/* Reset: status 0 resets device, queues, features and interrupts. */
	wr(&e, VIRTIO_MMIO_STATUS, 0);
	UT_EQ(e.dev.resets, 1);
	UT_EQ(rd(&e, VIRTIO_MMIO_STATUS), 0);
	UT_EQ(rd(&e, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	UT_EQ(e.d.driver_features, 0);
	for (uint32_t q = 0; q < 2; q++) {
		wr(&e, VIRTIO_MMIO_QUEUE_SEL, q);
		UT_EQ(rd(&e, VIRTIO_MMIO_QUEUE_READY), 0);
		UT_EQ(rd(&e, VIRTIO_MMIO_QUEUE_NUM), 0);
		UT_EQ(rd(&e, VIRTIO_MMIO_QUEUE_DESC_LOW), 0);
	}
	/* QueueReady 0 stops a queue (the driver reads it back). */
	negotiate(&e, V1);
	setup_queue(&e, 0, 16, 0x10000);
	wr(&e, VIRTIO_MMIO_QUEUE_READY, 0);
	UT_EQ(rd(&e, VIRTIO_MMIO_QUEUE_READY), 0);
	env_release(&e);
}

UT_TEST(mmio_bad_queue_sets_needs_reset)
{
	struct { uint32_t num; uint64_t base; } bad[] = {
		{ 0, 0x10000 }, { 12, 0x10000 }, { 128, 0x10000 }, { 0x10010, 0x10000 },
		{ 16, 0x10008 }, { 16, (16ull << 20) - 0x1000 }, { 16, 1ull << 40 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct env e;
		env_init(&e);
		negotiate(&e, V1);
		setup_queue(&e, 0, bad[i].num, bad[i].base);
		UT_EQ(rd(&e, VIRTIO_MMIO_QUEUE_READY), 0);
		UT_ASSERT(rd(&e, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
		/* The driver cannot clear NEEDS_RESET, only reset clears it. */
		wr(&e, VIRTIO_MMIO_STATUS, rd(&e, VIRTIO_MMIO_STATUS) & ~VIRTIO_CONFIG_S_NEEDS_RESET);
		UT_ASSERT(rd(&e, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
		wr(&e, VIRTIO_MMIO_STATUS, 0);
		UT_EQ(rd(&e, VIRTIO_MMIO_STATUS), 0);
		env_release(&e);
	}
}

UT_TEST(mmio_needs_reset_interrupts_after_driver_ok)
{
	struct env e;
	env_init(&e);
	negotiate(&e, V1);
	setup_queue(&e, 0, 16, 0x10000);
	wr(&e, VIRTIO_MMIO_STATUS, rd(&e, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_DRIVER_OK);
	virtio_mmio_lock(&e.d);
	UT_ASSERT(virtio_mmio_queue(&e.d, 0) != NULL);
	virtio_mmio_set_needs_reset(&e.d);
	UT_ASSERT(virtio_mmio_queue(&e.d, 0) == NULL);  /* device stops using queues */
	virtio_mmio_unlock(&e.d);
	UT_EQ(rd(&e, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	struct pollfd p = { .fd = virtio_mmio_irq_fd(&e.d), .events = POLLIN };
	UT_EQ(poll(&p, 1, 0), 1);
	wr(&e, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
	UT_EQ(rd(&e, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	env_release(&e);
}

UT_TEST(mmio_notify_dispatch)
{
	struct env e;
	env_init(&e);
	negotiate(&e, V1);
	setup_queue(&e, 0, 16, 0x10000);
	setup_queue(&e, 1, 16, 0x20000);
	wr(&e, VIRTIO_MMIO_QUEUE_NOTIFY, 1);            /* before DRIVER_OK */
	UT_EQ(virtio_mmio_process(&e.d), 0);
	UT_EQ(e.dev.notified[1], 0);
	wr(&e, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	wr(&e, VIRTIO_MMIO_STATUS, rd(&e, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_DRIVER_OK);
	/* DRIVER_OK replays every ready queue once. */
	UT_EQ(virtio_mmio_process(&e.d), 2);
	UT_EQ(e.dev.notified[0], 1);
	UT_EQ(e.dev.notified[1], 1);
	UT_EQ(virtio_mmio_process(&e.d), 0);
	wr(&e, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	wr(&e, VIRTIO_MMIO_QUEUE_NOTIFY, 1);            /* coalesced */
	wr(&e, VIRTIO_MMIO_QUEUE_NOTIFY, 7);            /* no such queue */
	wr(&e, VIRTIO_MMIO_QUEUE_NOTIFY, 0xffffffffu);
	UT_EQ(virtio_mmio_process(&e.d), 1);
	UT_EQ(e.dev.notified[1], 2);
	UT_EQ(e.dev.notified[0], 1);
	/* The kick fd is what a device thread waits on. */
	wr(&e, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	struct pollfd p = { .fd = virtio_mmio_kick_fd(&e.d, 0), .events = POLLIN };
	UT_EQ(poll(&p, 1, 0), 1);
	UT_EQ(virtio_mmio_process(&e.d), 1);
	UT_EQ(poll(&p, 1, 0), 0);
	env_release(&e);
}

UT_TEST(mmio_init_rejects_bad_ops)
{
	struct vmm_mem mem;
	struct virtio_mmio_dev d;
	struct dummy dev;
	UT_EQ(vmm_mem_init(&mem, 16 << 20), 0);
	struct virtio_dev_ops o = dummy_ops;
	o.num_queues = 0;
	UT_EQ(virtio_mmio_init(&d, &mem, BASE, 5, -1, &o, &dev), -EINVAL);
	o = dummy_ops;
	o.queue_max = 512;
	UT_EQ(virtio_mmio_init(&d, &mem, BASE, 5, -1, &o, &dev), -EINVAL);
	o = dummy_ops;
	o.config_len = 0x1000;
	UT_EQ(virtio_mmio_init(&d, &mem, BASE, 5, -1, &o, &dev), -EINVAL);
	UT_EQ(virtio_mmio_init(&d, &mem, BASE + 4, 5, -1, &dummy_ops, &dev), -EINVAL);
	virtio_mmio_release(&d);                        /* safe after a failed init */
	vmm_mem_release(&mem);
}

/* With a VM fd the transport registers its irqfd at init and an ioeventfd
 * per queue at QueueReady, and unregisters them on reset and release.
 * Needs /dev/kvm (registration only: no vCPU runs); without it the test
 * says so and checks nothing. */
UT_TEST(mmio_kvm_irqfd_and_ioeventfd)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		printf("  (no /dev/kvm: KVM registration not exercised)\n");
		return;
	}
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	UT_ASSERT(vm >= 0);
	UT_EQ(ioctl(vm, KVM_CREATE_IRQCHIP, 0), 0);
	struct env e;
	memset(&e, 0, sizeof(e));
	UT_EQ(vmm_mem_init(&e.mem, 16 << 20), 0);
	UT_EQ(virtio_mmio_init(&e.d, &e.mem, BASE, 5, vm, &dummy_ops, &e.dev), 0);
	UT_ASSERT(e.d.irqfd_on);
	negotiate(&e, V1);
	setup_queue(&e, 1, 16, 0x20000);
	UT_ASSERT(e.d.ioevent_on[1]);
	UT_ASSERT(!e.d.ioevent_on[0]);
	/* The same registration twice is refused by KVM: ours is in place. */
	struct kvm_ioeventfd io = { .datamatch = 1, .addr = BASE + VIRTIO_MMIO_QUEUE_NOTIFY, .len = 4,
				    .fd = virtio_mmio_kick_fd(&e.d, 1), .flags = KVM_IOEVENTFD_FLAG_DATAMATCH };
	UT_EQ(ioctl(vm, KVM_IOEVENTFD, &io), -1);
	UT_EQ(errno, EEXIST);
	wr(&e, VIRTIO_MMIO_STATUS, 0);                  /* reset unregisters */
	UT_ASSERT(!e.d.ioevent_on[1]);
	UT_EQ(ioctl(vm, KVM_IOEVENTFD, &io), 0);        /* free again: ours is gone */
	io.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
	UT_EQ(ioctl(vm, KVM_IOEVENTFD, &io), 0);
	negotiate(&e, V1);
	setup_queue(&e, 0, 16, 0x10000);
	UT_ASSERT(e.d.ioevent_on[0]);
	virtio_mmio_interrupt(&e.d, VIRTIO_MMIO_INT_VRING);     /* into the irqchip */
	UT_EQ(rd(&e, VIRTIO_MMIO_INTERRUPT_STATUS), 1);
	env_release(&e);
	UT_ASSERT(!e.d.irqfd_on);
	close(vm);
	close(kvm);
}
