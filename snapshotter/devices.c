/* devices.c — 8250 and virtio-vsock transport state for snapshots. */
#include "snapshotter/devices.h"
#include "vmm/err.h"
#include "vmm/layout.h"
#include "vmm/virtio_mmio.h"
#include "vmm/vm.h"
#include "vmm/vsock_host.h"
/* The device's internals, for its one piece of state outside the transport
 * (next_port).  This belongs in vsock_host.c as a save/restore pair; until
 * then it is read and written here under the transport lock, the way
 * vsock_host.c itself does. */
#include "vmm/vsock.h"

#include <errno.h>
#include <linux/virtio_mmio.h>
#include <string.h>

void snap_devices_quiesce(struct vmm_vm *vm)
{
	if (vm->vsock)
		vsock_host_stop(vm->vsock);
}

int snap_devices_resume(struct vmm_vm *vm)
{
	if (!vm->vsock)
		return 0;
	int r = vsock_host_start(vm->vsock);
	if (r && r != -EALREADY)
		return vmm_errno(r, "virtio-vsock device thread");
	return 0;
}

/* The guest CID is the device's config space (virtio 1.x §5.10.4): read it
 * the way the guest does. */
static uint64_t vsock_cid(struct virtio_mmio_dev *d)
{
	uint8_t cfg[8];
	virtio_mmio_access(d, d->base + VIRTIO_MMIO_CONFIG, cfg, sizeof(cfg), false);
	uint64_t cid = 0;
	for (int i = 7; i >= 0; i--)
		cid = cid << 8 | cfg[i];
	return cid;
}

void snap_devices_capture(struct vmm_vm *vm, struct snap_vm_state *st)
{
	const struct vmm_serial *s = &vm->serial;
	st->serial = (struct snap_serial_state){
		.ier = s->ier, .lcr = s->lcr, .mcr = s->mcr, .scr = s->scr, .dll = s->dll,
		.dlm = s->dlm, .fcr = s->fcr, .thre_pending = s->thre_pending,
		.irq_level = s->irq_level != 0,
	};
	st->vsock_cid = 0;
	memset(&st->vsock_mmio, 0, sizeof(st->vsock_mmio));
	if (vm->vsock) {
		struct virtio_mmio_dev *d = vsock_host_mmio(vm->vsock);
		st->vsock_cid = vsock_cid(d);
		virtio_mmio_save(d, &st->vsock_mmio);
		virtio_mmio_lock(d);
		st->vsock_next_port = vm->vsock->next_port;
		virtio_mmio_unlock(d);
	}
	st->agent_ready = vm->ready;
}

#define VSOCK_EVQ 2      /* virtio 1.x §5.10.2: rx, tx, event */

uint64_t snap_vsock_evq_avail_idx_gpa(const struct snap_vm_state *st)
{
	const struct virtio_mmio_queue_state *q = &st->vsock_mmio.q[VSOCK_EVQ];
	if (!st->vsock_cid || !q->ready || !q->num)
		return 0;
	return q->avail + 2;    /* struct virtq_avail { le16 flags; le16 idx; ... } */
}

int snap_devices_restore(struct vmm_vm *vm, const struct snap_vm_state *st)
{
	int r;
	struct vmm_serial *s = &vm->serial;
	const struct snap_serial_state *ss = &st->serial;

	s->ier = ss->ier, s->lcr = ss->lcr, s->mcr = ss->mcr, s->scr = ss->scr;
	s->dll = ss->dll, s->dlm = ss->dlm, s->fcr = ss->fcr;
	s->thre_pending = ss->thre_pending;
	s->irq_level = ss->irq_level;
	/* KVM keeps its own view of each line's level, which KVM_SET_IRQCHIP
	 * does not restore: raise it again so the next edge is seen.  (At most
	 * one spurious THRE interrupt; the 8250 driver reads IIR and moves on.) */
	if (ss->irq_level && (r = vmm_kvm_irq_line(&vm->kvm, VMM_COM1_IRQ, 1)))
		return r;

	if (!st->vsock_cid != !vm->vsock)
		return vmm_err(-EINVAL, "the snapshot %s a vsock device, the VM %s",
			       st->vsock_cid ? "has" : "has no", vm->vsock ? "has one" : "has none");
	if (!vm->vsock)
		return 0;
	struct virtio_mmio_dev *d = vsock_host_mmio(vm->vsock);
	uint64_t cid = vsock_cid(d);
	if (cid != st->vsock_cid)
		return vmm_err(-EINVAL, "the snapshot's vsock CID is %llu, the VM's %llu",
			       (unsigned long long)st->vsock_cid, (unsigned long long)cid);
	vsock_host_stop(vm->vsock);
	if ((r = virtio_mmio_restore(d, &st->vsock_mmio))) {
		vmm_errno(r, "virtio-vsock transport state (rings outside guest RAM?)");
		goto out_start;
	}
	/* An interrupt raised just before the pause may still have been on its
	 * way through the irqfd: raise what InterruptStatus says again. */
	if (st->vsock_mmio.isr)
		virtio_mmio_interrupt(d, st->vsock_mmio.isr);
	vsock_host_transport_reset(vm->vsock);
	virtio_mmio_lock(d);
	vm->vsock->next_port = st->vsock_next_port;
	virtio_mmio_unlock(d);
out_start:;
	int r2 = snap_devices_resume(vm);
	return r ? r : r2;
}
