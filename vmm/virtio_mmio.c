/* virtio_mmio.c — virtio-mmio v2 transport: registers, status, irqfd, ioeventfd. */
#include "vmm/virtio_mmio.h"

#include <endian.h>
#include <errno.h>
#include <linux/kvm.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/err.h"

#define MMIO_MAGIC      0x74726976u     /* "virt" */
#define MMIO_VERSION    2u
#define F(bit)          (1ull << (bit))
#define TRANSPORT_FEATURES (F(VIRTIO_F_VERSION_1) | F(VIRTIO_RING_F_EVENT_IDX) | \
			    F(VIRTIO_RING_F_INDIRECT_DESC))

static uint64_t offered(const struct virtio_mmio_dev *d)
{
	return d->ops->features | TRANSPORT_FEATURES;
}

static int ioevent(struct virtio_mmio_dev *d, uint16_t q, bool on)
{
	struct kvm_ioeventfd io = {
		.datamatch = q,
		.addr = d->base + VIRTIO_MMIO_QUEUE_NOTIFY,
		.len = 4,
		.fd = d->kick_fd[q],
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (on ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};
	if (d->vmfd < 0 || d->ioevent_on[q] == on)
		return 0;
	if (ioctl(d->vmfd, KVM_IOEVENTFD, &io) < 0)
		return -errno;
	d->ioevent_on[q] = on;
	return 0;
}

static int irqfd(struct virtio_mmio_dev *d, bool on)
{
	struct kvm_irqfd irq = {
		.fd = (uint32_t)d->irq_fd,
		.gsi = (uint32_t)d->gsi,
		.flags = on ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};
	if (d->vmfd < 0 || d->irqfd_on == on)
		return 0;
	if (ioctl(d->vmfd, KVM_IRQFD, &irq) < 0)
		return -errno;
	d->irqfd_on = on;
	return 0;
}

int virtio_mmio_init(struct virtio_mmio_dev *d, const struct vmm_mem *mem, uint64_t base_gpa,
		     int gsi, int vmfd, const struct virtio_dev_ops *ops, void *opaque)
{
	int r;

	memset(d, 0, sizeof(*d));
	d->irq_fd = -1;
	for (int i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++)
		d->kick_fd[i] = -1;
	if (!ops || !ops->queue_notify || !ops->reset || !ops->config_read ||
	    ops->num_queues == 0 || ops->num_queues > VIRTIO_MMIO_MAX_QUEUES ||
	    ops->queue_max == 0 || ops->queue_max > VIRTQ_MAX_SIZE ||
	    ops->config_len > VIRTIO_MMIO_WINDOW - VIRTIO_MMIO_CONFIG || (base_gpa & 0xfff))
		return vmm_err(-EINVAL, "virtio-mmio: bad device description");
	d->ops = ops;
	d->opaque = opaque;
	d->mem = mem;
	d->base = base_gpa;
	d->gsi = gsi;
	d->vmfd = vmfd;
	r = pthread_mutex_init(&d->lock, NULL);
	if (r)
		return vmm_err(-r, "virtio-mmio: mutex");
	for (uint16_t i = 0; i < ops->num_queues; i++) {
		virtq_init(&d->vq[i], mem, ops->queue_max);
		d->kick_fd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (d->kick_fd[i] < 0) {
			r = vmm_errno(-errno, "virtio-mmio: kick eventfd");
			goto err_release;
		}
	}
	d->irq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->irq_fd < 0) {
		r = vmm_errno(-errno, "virtio-mmio: irq eventfd");
		goto err_release;
	}
	r = irqfd(d, true);
	if (r < 0) {
		vmm_errno(r, "virtio-mmio: KVM_IRQFD gsi %d", gsi);
		goto err_release;
	}
	return 0;

err_release:
	virtio_mmio_release(d);
	return r;
}

void virtio_mmio_release(struct virtio_mmio_dev *d)
{
	if (!d->ops)
		return;
	for (uint16_t i = 0; i < d->ops->num_queues; i++) {
		(void)ioevent(d, i, false);
		if (d->kick_fd[i] >= 0)
			close(d->kick_fd[i]);
		d->kick_fd[i] = -1;
	}
	(void)irqfd(d, false);
	if (d->irq_fd >= 0)
		close(d->irq_fd);
	d->irq_fd = -1;
	pthread_mutex_destroy(&d->lock);
	d->ops = NULL;
}

bool virtio_mmio_handles(const struct virtio_mmio_dev *d, uint64_t gpa)
{
	return gpa >= d->base && gpa - d->base < VIRTIO_MMIO_WINDOW;
}

void virtio_mmio_lock(struct virtio_mmio_dev *d)
{
	pthread_mutex_lock(&d->lock);
}

void virtio_mmio_unlock(struct virtio_mmio_dev *d)
{
	pthread_mutex_unlock(&d->lock);
}

static void drain(int fd)
{
	uint64_t v;
	while (read(fd, &v, sizeof(v)) == sizeof(v))
		;
}

void virtio_mmio_kick(struct virtio_mmio_dev *d, uint16_t qidx)
{
	uint64_t one = 1;
	if (qidx < d->ops->num_queues)
		(void)!write(d->kick_fd[qidx], &one, sizeof(one));
}

void virtio_mmio_interrupt(struct virtio_mmio_dev *d, uint32_t bits)
{
	uint64_t one = 1;
	__atomic_fetch_or(&d->isr, bits, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&d->irq_count, 1, __ATOMIC_RELAXED);
	/* Edge semantics: every raise signals, even with bits already set. */
	(void)!write(d->irq_fd, &one, sizeof(one));
}

void virtio_mmio_set_needs_reset(struct virtio_mmio_dev *d)
{
	if (d->status & VIRTIO_CONFIG_S_NEEDS_RESET)
		return;
	d->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	if (d->status & VIRTIO_CONFIG_S_DRIVER_OK)
		virtio_mmio_interrupt(d, VIRTIO_MMIO_INT_CONFIG);
}

void virtio_mmio_config_changed(struct virtio_mmio_dev *d)
{
	d->config_gen++;
	if (d->status & VIRTIO_CONFIG_S_DRIVER_OK)
		virtio_mmio_interrupt(d, VIRTIO_MMIO_INT_CONFIG);
}

struct virtq *virtio_mmio_queue(struct virtio_mmio_dev *d, uint16_t qidx)
{
	uint32_t s = d->status;
	if (qidx >= d->ops->num_queues || !d->vq[qidx].ready || !(s & VIRTIO_CONFIG_S_DRIVER_OK) ||
	    (s & (VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED)))
		return NULL;
	return &d->vq[qidx];
}

void virtio_mmio_notify_used(struct virtio_mmio_dev *d, uint16_t qidx)
{
	if (qidx < d->ops->num_queues && virtq_need_interrupt(&d->vq[qidx]))
		virtio_mmio_interrupt(d, VIRTIO_MMIO_INT_VRING);
}

int virtio_mmio_process_locked(struct virtio_mmio_dev *d)
{
	int n = 0;
	for (uint16_t i = 0; i < d->ops->num_queues; i++) {
		uint64_t v;
		if (read(d->kick_fd[i], &v, sizeof(v)) != sizeof(v))
			continue;
		if (virtio_mmio_queue(d, i)) {
			d->ops->queue_notify(d->opaque, i);
			n++;
		}
	}
	return n;
}

int virtio_mmio_process(struct virtio_mmio_dev *d)
{
	virtio_mmio_lock(d);
	int n = virtio_mmio_process_locked(d);
	virtio_mmio_unlock(d);
	return n;
}

int virtio_mmio_kick_fd(const struct virtio_mmio_dev *d, uint16_t qidx)
{
	return qidx < d->ops->num_queues ? d->kick_fd[qidx] : -1;
}

int virtio_mmio_irq_fd(const struct virtio_mmio_dev *d)
{
	return d->irq_fd;
}

static void device_reset(struct virtio_mmio_dev *d)
{
	d->ops->reset(d->opaque);
	for (uint16_t i = 0; i < d->ops->num_queues; i++) {
		(void)ioevent(d, i, false);
		virtq_reset(&d->vq[i]);
		drain(d->kick_fd[i]);
	}
	d->status = 0;
	d->dev_feat_sel = d->drv_feat_sel = d->queue_sel = 0;
	d->driver_features = 0;
	__atomic_store_n(&d->isr, 0, __ATOMIC_SEQ_CST);
}

static void write_status(struct virtio_mmio_dev *d, uint32_t v)
{
	uint32_t old = d->status;

	if (v == 0) {
		device_reset(d);
		return;
	}
	/* NEEDS_RESET is the device's; the driver only ever adds bits. */
	v = (v & 0xff & ~VIRTIO_CONFIG_S_NEEDS_RESET) | (old & VIRTIO_CONFIG_S_NEEDS_RESET);
	if ((v & old) != old)
		return;
	uint32_t added = v & ~old;
	if (added & VIRTIO_CONFIG_S_FEATURES_OK) {
		uint64_t f = d->driver_features;
		if (!(f & F(VIRTIO_F_VERSION_1)) || (f & ~offered(d)))
			v &= ~VIRTIO_CONFIG_S_FEATURES_OK;     /* driver reads it back */
	}
	if ((added & VIRTIO_CONFIG_S_DRIVER_OK) && !(v & VIRTIO_CONFIG_S_FEATURES_OK))
		v &= ~VIRTIO_CONFIG_S_DRIVER_OK;
	d->status = v;
	if (v & added & VIRTIO_CONFIG_S_DRIVER_OK) {
		if (d->ops->activate)
			d->ops->activate(d->opaque);
		/* Kicks that came before DRIVER_OK were ignored: look again. */
		for (uint16_t i = 0; i < d->ops->num_queues; i++)
			if (d->vq[i].ready)
				virtio_mmio_kick(d, i);
	}
}

static void queue_ready(struct virtio_mmio_dev *d, struct virtq *q, uint16_t qi, uint32_t v)
{
	if (v == 0) {
		(void)ioevent(d, qi, false);
		q->ready = false;
		return;
	}
	if (q->ready || !(d->status & VIRTIO_CONFIG_S_FEATURES_OK))
		return;
	if (virtq_enable(q, d->driver_features) < 0) {
		virtio_mmio_set_needs_reset(d);
		return;
	}
	/* Without the ioeventfd, kicks still arrive as MMIO writes: not fatal. */
	(void)ioevent(d, qi, true);
}

static uint32_t reg_read(struct virtio_mmio_dev *d, uint32_t off)
{
	struct virtq *q = d->queue_sel < d->ops->num_queues ? &d->vq[d->queue_sel] : NULL;
	uint64_t f = offered(d);

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:          return MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:              return MMIO_VERSION;
	case VIRTIO_MMIO_DEVICE_ID:            return d->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:            return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return d->dev_feat_sel == 0 ? (uint32_t)f : d->dev_feat_sel == 1 ? (uint32_t)(f >> 32) : 0;
	case VIRTIO_MMIO_QUEUE_NUM_MAX:        return q ? q->max_num : 0;
	case VIRTIO_MMIO_QUEUE_NUM:            return q ? q->num : 0;
	case VIRTIO_MMIO_QUEUE_READY:          return q ? q->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:     return __atomic_load_n(&d->isr, __ATOMIC_SEQ_CST);
	case VIRTIO_MMIO_STATUS:               return d->status;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:       return q ? (uint32_t)q->desc_gpa : 0;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:      return q ? (uint32_t)(q->desc_gpa >> 32) : 0;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:      return q ? (uint32_t)q->avail_gpa : 0;
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:     return q ? (uint32_t)(q->avail_gpa >> 32) : 0;
	case VIRTIO_MMIO_QUEUE_USED_LOW:       return q ? (uint32_t)q->used_gpa : 0;
	case VIRTIO_MMIO_QUEUE_USED_HIGH:      return q ? (uint32_t)(q->used_gpa >> 32) : 0;
	case VIRTIO_MMIO_SHM_LEN_LOW:          /* no shared memory regions */
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH:        return 0xffffffffu;
	case VIRTIO_MMIO_CONFIG_GENERATION:    return d->config_gen;
	default:                               return 0;
	}
}

static void set_half(uint64_t *x, bool high, uint32_t v)
{
	*x = high ? (*x & 0xffffffffull) | ((uint64_t)v << 32) : (*x & ~0xffffffffull) | v;
}

static void reg_write(struct virtio_mmio_dev *d, uint32_t off, uint32_t v)
{
	uint16_t qi = (uint16_t)d->queue_sel;
	struct virtq *q = d->queue_sel < d->ops->num_queues ? &d->vq[qi] : NULL;
	/* Queue layout may change only while the queue is not live. */
	struct virtq *qcfg = q && !q->ready ? q : NULL;
	bool feat_open = !(d->status & VIRTIO_CONFIG_S_FEATURES_OK);

	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:  d->dev_feat_sel = v; break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:  d->drv_feat_sel = v; break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (feat_open && d->drv_feat_sel < 2)
			set_half(&d->driver_features, d->drv_feat_sel == 1, v);
		break;
	case VIRTIO_MMIO_QUEUE_SEL:            d->queue_sel = v; break;
	case VIRTIO_MMIO_QUEUE_NUM:
		if (qcfg)
			qcfg->num = v > 0xffff ? 0 : (uint16_t)v;      /* checked at ready */
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		if (q)
			queue_ready(d, q, qi, v);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		if (v < d->ops->num_queues)
			virtio_mmio_kick(d, (uint16_t)v);
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		__atomic_fetch_and(&d->isr, ~v, __ATOMIC_SEQ_CST);
		break;
	case VIRTIO_MMIO_STATUS:               write_status(d, v); break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:       if (qcfg) set_half(&qcfg->desc_gpa, false, v); break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:      if (qcfg) set_half(&qcfg->desc_gpa, true, v); break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:      if (qcfg) set_half(&qcfg->avail_gpa, false, v); break;
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:     if (qcfg) set_half(&qcfg->avail_gpa, true, v); break;
	case VIRTIO_MMIO_QUEUE_USED_LOW:       if (qcfg) set_half(&qcfg->used_gpa, false, v); break;
	case VIRTIO_MMIO_QUEUE_USED_HIGH:      if (qcfg) set_half(&qcfg->used_gpa, true, v); break;
	default:                               break;      /* read-only or unknown */
	}
}

void virtio_mmio_access(struct virtio_mmio_dev *d, uint64_t gpa, uint8_t *data, uint32_t len,
			bool is_write)
{
	if (!virtio_mmio_handles(d, gpa) || len == 0 || len > 8 ||
	    gpa - d->base + len > VIRTIO_MMIO_WINDOW) {
		if (!is_write && len <= 8)
			memset(data, 0, len);
		return;
	}
	uint32_t off = (uint32_t)(gpa - d->base);
	uint32_t v = 0;

	if (off >= VIRTIO_MMIO_CONFIG) {
		uint32_t coff = off - VIRTIO_MMIO_CONFIG, clen = d->ops->config_len;
		uint32_t n = coff >= clen ? 0 : clen - coff < len ? clen - coff : len;
		if (!is_write)
			memset(data, 0, len);
		pthread_mutex_lock(&d->lock);
		if (n && !is_write)
			d->ops->config_read(d->opaque, coff, data, n);
		else if (n && d->ops->config_write)
			d->ops->config_write(d->opaque, coff, data, n);
		pthread_mutex_unlock(&d->lock);
		return;
	}
	/* Registers: aligned 32-bit accesses only (§4.2.2.2). */
	if (len != 4 || (off & 3)) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (is_write) {
		memcpy(&v, data, 4);
		v = le32toh(v);
		if (off == VIRTIO_MMIO_INTERRUPT_ACK) {        /* lock-free */
			__atomic_fetch_and(&d->isr, ~v, __ATOMIC_SEQ_CST);
			return;
		}
		pthread_mutex_lock(&d->lock);
		reg_write(d, off, v);
		pthread_mutex_unlock(&d->lock);
		return;
	}
	if (off == VIRTIO_MMIO_INTERRUPT_STATUS) {
		v = __atomic_load_n(&d->isr, __ATOMIC_SEQ_CST);
	} else {
		pthread_mutex_lock(&d->lock);
		v = reg_read(d, off);
		pthread_mutex_unlock(&d->lock);
	}
	v = htole32(v);
	memcpy(data, &v, 4);
}

void virtio_mmio_access_fn(void *dev, uint64_t gpa, uint8_t *data, uint32_t len, bool is_write)
{
	virtio_mmio_access(dev, gpa, data, len, is_write);
}

void virtio_mmio_save(struct virtio_mmio_dev *d, struct virtio_mmio_state *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&d->lock);
	s->status = d->status;
	s->dev_feat_sel = d->dev_feat_sel;
	s->drv_feat_sel = d->drv_feat_sel;
	s->queue_sel = d->queue_sel;
	s->config_gen = d->config_gen;
	s->isr = __atomic_load_n(&d->isr, __ATOMIC_SEQ_CST);
	s->driver_features = d->driver_features;
	for (uint16_t i = 0; i < d->ops->num_queues; i++) {
		const struct virtq *q = &d->vq[i];
		s->q[i] = (struct virtio_mmio_queue_state){
			.desc = q->desc_gpa, .avail = q->avail_gpa, .used = q->used_gpa,
			.num = q->num, .last_avail = q->last_avail, .used_idx = q->used_idx,
			.signalled_used = q->signalled_used, .ready = q->ready,
		};
	}
	pthread_mutex_unlock(&d->lock);
}

int virtio_mmio_restore(struct virtio_mmio_dev *d, const struct virtio_mmio_state *s)
{
	int r = 0;

	pthread_mutex_lock(&d->lock);
	device_reset(d);
	d->dev_feat_sel = s->dev_feat_sel;
	d->drv_feat_sel = s->drv_feat_sel;
	d->queue_sel = s->queue_sel;
	d->config_gen = s->config_gen;
	d->driver_features = s->driver_features;
	for (uint16_t i = 0; i < d->ops->num_queues && !r; i++) {
		struct virtq *q = &d->vq[i];
		q->desc_gpa = s->q[i].desc;
		q->avail_gpa = s->q[i].avail;
		q->used_gpa = s->q[i].used;
		q->num = s->q[i].num;
		if (!s->q[i].ready)
			continue;
		r = virtq_enable(q, d->driver_features);
		q->last_avail = s->q[i].last_avail;
		q->used_idx = s->q[i].used_idx;
		q->signalled_used = s->q[i].signalled_used;
		if (!r)
			(void)ioevent(d, i, true);
	}
	if (r < 0 || (s->driver_features & ~offered(d))) {
		device_reset(d);
		r = -EINVAL;
	} else {
		d->status = s->status & 0xff;
		__atomic_store_n(&d->isr, s->isr, __ATOMIC_SEQ_CST);
		for (uint16_t i = 0; i < d->ops->num_queues; i++)
			if (d->vq[i].ready)
				virtio_mmio_kick(d, i);
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}
