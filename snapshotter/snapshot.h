/* snapshot.h — the snapshotter's API: save a paused VM into a snapshot
 * directory, open (verify) one, restore it into a fresh VM.
 *
 * Save:    stop the VM's run thread and join it (vmm_vm_stop() + join; the
 *          VM is then paused at a KVM_RUN boundary), then snap_save().  It
 *          stops the vsock device thread, captures device state (8250,
 *          virtio-mmio transport), the vCPU and VM state (vmstate.h) and
 *          guest RAM (memfile.h) into DIR.tmp-XXXXXX next to DIR, syncs it
 *          and renames it to DIR atomically (an existing snapshot at DIR is
 *          swapped out with RENAME_EXCHANGE and removed; anything else at
 *          DIR is refused with -EEXIST).  The vsock thread is started again,
 *          the VM is otherwise untouched: release it, or run it on (a later
 *          vmm_vm_run() needs the lead's stop_requested reset; see gaps).
 * Open:    snap_open() reads and verifies meta.pb (format.h), the caller's
 *          expected sha256s (-ESTALE on mismatch), the CPU (vendor and
 *          features against this host's KVM_GET_SUPPORTED_CPUID, -ENOEXEC)
 *          and memory.bin's size (-EBADMSG), and keeps memory.bin open.
 *          Nothing is mapped and no VM is touched: a refused snapshot costs
 *          nothing.  One image may serve any number of restores, from any
 *          number of threads at once; close it when done (mappings made
 *          from it stay valid).
 * Restore: vmm_vm_create() with snap_vm_config()'s memory size and vsock
 *          CID — NOT vmm_vm_boot() — then snap_restore(); or snap_restore()
 *          into a VM restored from the same snapshot before and stopped
 *          (not running: reset in place; CPUID can only be set again to the
 *          same values, so a VM of another snapshot may be refused):
 *          guest RAM becomes
 *          a MAP_PRIVATE (copy-on-write) mapping of memory.bin, then the
 *          vCPU/VM state, then devices: the 8250, the virtio-mmio transport
 *          (virtio_mmio_restore) and vsock_host_transport_reset() — the
 *          guest's listening sockets survive, its connections are reset;
 *          connect again.  Then run the VM (vmm_vm_run, or
 *          snap_vm_thread_start() which does all of this on a thread).
 *
 * Errors are -errno with one line in vmm_strerror().
 */
#ifndef SNAP_SNAPSHOT_H
#define SNAP_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "snapshotter/format.h"
#include "snapshotter/memfile.h"
#include "vmm/vm.h"
#include "vmm/vm_thread.h"

struct snap_save_stats {
	uint64_t state_us;              /* devices + vCPU + VM state */
	uint64_t memory_us;             /* memory.bin written and synced */
	uint64_t total_us;              /* from the call to the rename */
	struct snap_mem_stats mem;
	uint64_t mem_file_alloc;        /* bytes memory.bin occupies on disk */
	uint64_t meta_bytes;
};

int snap_save(struct vmm_vm *vm, const char *dir, const struct snap_origin *origin,
	      unsigned mem_flags, struct snap_save_stats *st) __attribute__((warn_unused_result));

struct snap_expect {
	/* Hashes that are known (non-zero) here must match the snapshot's. */
	const struct snap_origin *origin;
	const char *kvm_path;           /* KVM_GET_SUPPORTED_CPUID from here (NULL: /dev/kvm) */
	const struct kvm_cpuid_entry2 *host_cpuid;  /* or this instead (tests) */
	uint32_t n_host_cpuid;
	bool skip_cpu_check;            /* inspection only: never restore such an image */
};

struct snap_image {
	struct snap_meta *meta;         /* owned */
	int mem_fd;                     /* memory.bin, read-only; owned */
	uint64_t mem_file_alloc;        /* bytes it occupies on disk */
};

int snap_open(const char *dir, const struct snap_expect *exp, struct snap_image *img)
	__attribute__((warn_unused_result));
void snap_image_close(struct snap_image *img);

/* Memory size and vsock CID a VM needs to take this image. */
void snap_vm_config(const struct snap_image *img, struct vmm_vm_config *cfg);

struct snap_restore_stats {
	uint64_t memory_us;             /* memory.bin mapped over guest RAM */
	uint64_t state_us;              /* vCPU + VM state */
	uint64_t devices_us;
	uint64_t total_us;              /* snap_restore() */
	uint64_t reset_ack_us;          /* snap_vm_thread_start(): run thread
					 * started to snap_wait_vsock_reset() */
};

int snap_restore(struct vmm_vm *vm, const struct snap_image *img, struct snap_restore_stats *st)
	__attribute__((warn_unused_result));

/* Once the restored VM runs: wait until the guest has taken the vsock
 * transport reset (it re-posts the event buffer after resetting its old
 * connections).  A host connection made before that can be caught by the
 * reset: the guest processes rx before events.  0 at once without vsock;
 * -ETIMEDOUT, -ESRCH when the VM stopped running. */
int snap_wait_vsock_reset(struct vmm_vm *vm, const struct snap_image *img, int timeout_ms)
	__attribute__((warn_unused_result));

/* vmm_vm_create() (cfg from `base` with snap_vm_config() applied) +
 * snap_restore() + a run thread + snap_wait_vsock_reset(), like
 * vmm_vm_thread_start() does for a boot; t->vm.ready is the snapshot's.  Join/release with vm_thread.h.
 * st may be NULL; create_us (may be NULL) gets vmm_vm_create()'s time. */
int snap_vm_thread_start(struct vmm_vm_thread *t, const struct vmm_vm_config *base,
			 const struct snap_image *img, struct snap_restore_stats *st,
			 uint64_t *create_us) __attribute__((warn_unused_result));

#endif
