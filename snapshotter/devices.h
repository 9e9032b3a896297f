/* devices.h — snapshot state of the VMM's own devices: the 8250 at COM1 and
 * the virtio-vsock device's virtio-mmio transport (the vsock connections
 * themselves are not state: a restore resets them).
 *
 * Save: snap_devices_quiesce() (stops the vsock device thread, so nothing
 * writes guest RAM or raises interrupts), snap_devices_capture(), ... and
 * snap_devices_resume() once memory is written.  Restore, after the vCPU and
 * VM state: snap_devices_restore().
 */
#ifndef SNAP_DEVICES_H
#define SNAP_DEVICES_H

#include "snapshotter/vmstate.h"

struct vmm_vm;

void snap_devices_quiesce(struct vmm_vm *vm);
int snap_devices_resume(struct vmm_vm *vm) __attribute__((warn_unused_result));
void snap_devices_capture(struct vmm_vm *vm, struct snap_vm_state *st);
int snap_devices_restore(struct vmm_vm *vm, const struct snap_vm_state *st)
	__attribute__((warn_unused_result));
/* Guest-physical address of the vsock event queue's avail->idx in the
 * snapshot, or 0 when there is none (no vsock, queue not set up). */
uint64_t snap_vsock_evq_avail_idx_gpa(const struct snap_vm_state *st);

#endif
