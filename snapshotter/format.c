/* format.c — meta.pb: SnapshotFile/Snapshot packing, and the checks that
 * run before any of it is trusted. */
#include "snapshotter/format.h"
#include "vmm/err.h"
#include "vmm/guest_mem.h"
#include "proto/snapshot.pb-c.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Everything one Snapshot message points to, in one allocation. */
struct enc {
	Ufsnap__Snapshot snap;
	Ufsnap__Memory mem;
	Ufsnap__Origin origin;
	Ufsnap__Vcpu vcpu, *vcpus[1];
	Ufsnap__CpuidEntry host_cpuid[SNAP_MAX_CPUID], *host_cpuid_p[SNAP_MAX_CPUID];
	Ufsnap__CpuidEntry cpuid[SNAP_MAX_CPUID], *cpuid_p[SNAP_MAX_CPUID];
	Ufsnap__Msr msrs[SNAP_MAX_MSRS], *msrs_p[SNAP_MAX_MSRS];
	ProtobufCBinaryData irqchip[SNAP_NIRQCHIPS];
	Ufsnap__Serial serial;
	Ufsnap__Vsock vsock;
	Ufsnap__VirtioMmio vmmio;
	Ufsnap__VirtioQueue q[VIRTIO_MMIO_MAX_QUEUES], *q_p[VIRTIO_MMIO_MAX_QUEUES];
};

static ProtobufCBinaryData blob(const void *p, size_t n)
{
	return (ProtobufCBinaryData){.len = n, .data = (uint8_t *)p};
}

static ProtobufCBinaryData hash_blob(const uint8_t *h)
{
	return snap_hash_known(h) ? blob(h, SNAP_SHA256_LEN) : blob(NULL, 0);
}

static void put_cpuid(Ufsnap__CpuidEntry *out, Ufsnap__CpuidEntry **p, const struct kvm_cpuid_entry2 *e,
		      uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		ufsnap__cpuid_entry__init(&out[i]);
		out[i].function = e[i].function;
		out[i].index = e[i].index;
		out[i].flags = e[i].flags;
		out[i].eax = e[i].eax;
		out[i].ebx = e[i].ebx;
		out[i].ecx = e[i].ecx;
		out[i].edx = e[i].edx;
		p[i] = &out[i];
	}
}

static void fill_vcpu(struct enc *x, const struct snap_vcpu_state *s)
{
	Ufsnap__Vcpu *v = &x->vcpu;
	ufsnap__vcpu__init(v);
	v->id = 0;
	v->mp_state = blob(&s->mp_state, sizeof(s->mp_state));
	v->regs = blob(&s->regs, sizeof(s->regs));
	v->sregs = blob(&s->sregs, sizeof(s->sregs));
	if (s->xsave_len)
		v->xsave = blob(s->xsave, s->xsave_len);
	else
		v->fpu = blob(&s->fpu, sizeof(s->fpu));
	if (s->has_xcrs)
		v->xcrs = blob(&s->xcrs, sizeof(s->xcrs));
	v->debugregs = blob(&s->debugregs, sizeof(s->debugregs));
	v->lapic = blob(&s->lapic, sizeof(s->lapic));
	v->tsc_khz = s->tsc_khz;
	put_cpuid(x->cpuid, x->cpuid_p, s->cpuid, s->ncpuid);
	v->n_cpuid = s->ncpuid;
	v->cpuid = x->cpuid_p;
	for (uint32_t i = 0; i < s->nmsrs; i++) {
		ufsnap__msr__init(&x->msrs[i]);
		x->msrs[i].index = s->msrs[i].index;
		x->msrs[i].data = s->msrs[i].data;
		x->msrs_p[i] = &x->msrs[i];
	}
	v->n_msrs = s->nmsrs;
	v->msrs = x->msrs_p;
	v->events = blob(&s->events, sizeof(s->events));
	x->vcpus[0] = v;
}

static void fill_devices(struct enc *x, const struct snap_vm_state *vm)
{
	const struct snap_serial_state *se = &vm->serial;
	ufsnap__serial__init(&x->serial);
	x->serial.ier = se->ier, x->serial.lcr = se->lcr, x->serial.mcr = se->mcr;
	x->serial.scr = se->scr, x->serial.dll = se->dll, x->serial.dlm = se->dlm;
	x->serial.fcr = se->fcr, x->serial.thre_pending = se->thre_pending;
	x->serial.irq_level = se->irq_level;
	x->snap.serial = &x->serial;
	if (!vm->vsock_cid)
		return;
	const struct virtio_mmio_state *t = &vm->vsock_mmio;
	ufsnap__vsock__init(&x->vsock);
	ufsnap__virtio_mmio__init(&x->vmmio);
	x->vsock.guest_cid = vm->vsock_cid;
	x->vsock.next_host_port = vm->vsock_next_port;
	x->vsock.transport = &x->vmmio;
	x->vmmio.status = t->status, x->vmmio.dev_feat_sel = t->dev_feat_sel;
	x->vmmio.drv_feat_sel = t->drv_feat_sel, x->vmmio.queue_sel = t->queue_sel;
	x->vmmio.config_gen = t->config_gen, x->vmmio.isr = t->isr;
	x->vmmio.driver_features = t->driver_features;
	for (int i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) {
		Ufsnap__VirtioQueue *q = &x->q[i];
		ufsnap__virtio_queue__init(q);
		q->desc = t->q[i].desc, q->avail = t->q[i].avail, q->used = t->q[i].used;
		q->num = t->q[i].num, q->last_avail = t->q[i].last_avail;
		q->used_idx = t->q[i].used_idx, q->signalled_used = t->q[i].signalled_used;
		q->ready = t->q[i].ready;
		x->q_p[i] = q;
	}
	x->vmmio.n_queues = VIRTIO_MMIO_MAX_QUEUES;
	x->vmmio.queues = x->q_p;
	x->snap.vsock = &x->vsock;
}

int snap_meta_encode(const struct snap_meta *m, uint8_t **out, size_t *len)
{
	const struct snap_vm_state *vm = &m->vm;
	if (m->n_host_cpuid > SNAP_MAX_CPUID || vm->vcpu.ncpuid > SNAP_MAX_CPUID ||
	    vm->vcpu.nmsrs > SNAP_MAX_MSRS || vm->vcpu.xsave_len > SNAP_XSAVE_MAX)
		return vmm_err(-EINVAL, "snapshot metadata: a table is over its limit");
	struct enc *x = calloc(1, sizeof(*x));
	if (!x)
		return vmm_err(-ENOMEM, "snapshot metadata: out of memory");
	Ufsnap__Snapshot *s = &x->snap;
	ufsnap__snapshot__init(s);
	s->cpu_vendor = (char *)m->cpu_vendor;
	s->host_release = (char *)m->host_release;
	put_cpuid(x->host_cpuid, x->host_cpuid_p, m->host_cpuid, m->n_host_cpuid);
	s->n_host_cpuid = m->n_host_cpuid;
	s->host_cpuid = x->host_cpuid_p;
	ufsnap__memory__init(&x->mem);
	x->mem.size = vm->mem_size;
	x->mem.nonzero_pages = m->nonzero_pages;
	s->memory = &x->mem;
	ufsnap__origin__init(&x->origin);
	x->origin.kernel_sha256 = hash_blob(m->origin.kernel);
	x->origin.initrd_sha256 = hash_blob(m->origin.initrd);
	x->origin.agent_sha256 = hash_blob(m->origin.agent);
	s->origin = &x->origin;
	fill_vcpu(x, &vm->vcpu);
	s->n_vcpus = 1;
	s->vcpus = x->vcpus;
	s->pit2 = blob(&vm->pit2, sizeof(vm->pit2));
	s->clock = blob(&vm->clock, sizeof(vm->clock));
	for (int i = 0; i < SNAP_NIRQCHIPS; i++)
		x->irqchip[i] = blob(&vm->irqchip[i], sizeof(vm->irqchip[i]));
	s->n_irqchip = SNAP_NIRQCHIPS;
	s->irqchip = x->irqchip;
	fill_devices(x, vm);
	s->agent_ready = vm->agent_ready;
	s->created_unix_ns = m->created_unix_ns;

	int ret = 0;
	size_t inner_len = ufsnap__snapshot__get_packed_size(s);
	uint8_t *inner = malloc(inner_len ? inner_len : 1);
	uint8_t sha[SNAP_SHA256_LEN];
	Ufsnap__SnapshotFile f = UFSNAP__SNAPSHOT_FILE__INIT;
	if (!inner) {
		ret = vmm_err(-ENOMEM, "snapshot metadata: out of memory");
		goto out;
	}
	ufsnap__snapshot__pack(s, inner);
	snap_sha256(inner, inner_len, sha);
	f.magic = SNAP_MAGIC;
	f.format_version = SNAP_FORMAT_VERSION;
	f.meta = blob(inner, inner_len);
	f.meta_sha256 = blob(sha, sizeof(sha));
	*len = ufsnap__snapshot_file__get_packed_size(&f);
	if (!(*out = malloc(*len))) {
		ret = vmm_err(-ENOMEM, "snapshot metadata: out of memory");
		goto out;
	}
	ufsnap__snapshot_file__pack(&f, *out);
out:
	free(inner);
	free(x);
	return ret;
}

/* ---- decoding ---- */

#define BAD(...) vmm_err(-EBADMSG, "meta.pb: " __VA_ARGS__)

static int get_blob(const char *what, const ProtobufCBinaryData *b, void *dst, size_t want)
{
	if (b->len != want)
		return BAD("%s is %zu bytes, expected %zu (damaged?)", what, b->len, want);
	memcpy(dst, b->data, want);
	return 0;
}

static int get_cpuid(const char *what, Ufsnap__CpuidEntry *const *in, size_t n,
		     struct kvm_cpuid_entry2 *out, uint32_t *nout)
{
	if (n > SNAP_MAX_CPUID)
		return BAD("%s has %zu CPUID entries, over %u", what, n, SNAP_MAX_CPUID);
	for (size_t i = 0; i < n; i++)
		out[i] = (struct kvm_cpuid_entry2){
			.function = in[i]->function, .index = in[i]->index, .flags = in[i]->flags,
			.eax = in[i]->eax, .ebx = in[i]->ebx, .ecx = in[i]->ecx, .edx = in[i]->edx,
		};
	*nout = (uint32_t)n;
	return 0;
}

static int get_hash(const char *what, const ProtobufCBinaryData *b, uint8_t *out)
{
	memset(out, 0, SNAP_SHA256_LEN);
	if (b->len == 0)
		return 0;
	if (b->len != SNAP_SHA256_LEN)
		return BAD("%s sha256 is %zu bytes", what, b->len);
	memcpy(out, b->data, SNAP_SHA256_LEN);
	return 0;
}

static int get_vcpu(const Ufsnap__Vcpu *v, struct snap_vcpu_state *s)
{
	int ret;
	if ((ret = get_blob("mp_state", &v->mp_state, &s->mp_state, sizeof(s->mp_state))) ||
	    (ret = get_blob("regs", &v->regs, &s->regs, sizeof(s->regs))) ||
	    (ret = get_blob("sregs", &v->sregs, &s->sregs, sizeof(s->sregs))) ||
	    (ret = get_blob("debugregs", &v->debugregs, &s->debugregs, sizeof(s->debugregs))) ||
	    (ret = get_blob("lapic", &v->lapic, &s->lapic, sizeof(s->lapic))) ||
	    (ret = get_blob("vcpu_events", &v->events, &s->events, sizeof(s->events))))
		return ret;
	if (v->xsave.len) {
		if (v->xsave.len < sizeof(struct kvm_xsave) || v->xsave.len > SNAP_XSAVE_MAX)
			return BAD("xsave is %zu bytes, outside [%zu, %u]", v->xsave.len,
				   sizeof(struct kvm_xsave), SNAP_XSAVE_MAX);
		memcpy(s->xsave, v->xsave.data, v->xsave.len);
		s->xsave_len = (uint32_t)v->xsave.len;
	} else if ((ret = get_blob("fpu", &v->fpu, &s->fpu, sizeof(s->fpu)))) {
		return ret;
	}
	s->has_xcrs = v->xcrs.len != 0;
	if (s->has_xcrs && (ret = get_blob("xcrs", &v->xcrs, &s->xcrs, sizeof(s->xcrs))))
		return ret;
	s->tsc_khz = v->tsc_khz;
	if ((ret = get_cpuid("the vCPU", v->cpuid, v->n_cpuid, s->cpuid, &s->ncpuid)))
		return ret;
	if (s->ncpuid == 0)
		return BAD("the vCPU has no CPUID");
	if (v->n_msrs > SNAP_MAX_MSRS)
		return BAD("%zu MSRs, over %u", v->n_msrs, SNAP_MAX_MSRS);
	for (size_t i = 0; i < v->n_msrs; i++)
		s->msrs[i] = (struct kvm_msr_entry){.index = v->msrs[i]->index, .data = v->msrs[i]->data};
	s->nmsrs = (uint32_t)v->n_msrs;
	return 0;
}

static int get_devices(const Ufsnap__Snapshot *s, struct snap_vm_state *vm)
{
	const Ufsnap__Serial *se = s->serial;
	if (!se)
		return BAD("no serial state");
	if ((se->ier | se->lcr | se->mcr | se->scr | se->dll | se->dlm | se->fcr) > 0xff)
		return BAD("serial register over 8 bits");
	vm->serial = (struct snap_serial_state){
		.ier = (uint8_t)se->ier, .lcr = (uint8_t)se->lcr, .mcr = (uint8_t)se->mcr,
		.scr = (uint8_t)se->scr, .dll = (uint8_t)se->dll, .dlm = (uint8_t)se->dlm,
		.fcr = (uint8_t)se->fcr, .thre_pending = se->thre_pending, .irq_level = se->irq_level,
	};
	if (!s->vsock)
		return 0;
	const Ufsnap__VirtioMmio *t = s->vsock->transport;
	if (s->vsock->guest_cid < 3 || s->vsock->guest_cid > UINT32_MAX || !t)
		return BAD("vsock device with guest CID %llu or no transport state",
			   (unsigned long long)s->vsock->guest_cid);
	if (t->n_queues > VIRTIO_MMIO_MAX_QUEUES)
		return BAD("virtio-mmio transport with %zu queues", t->n_queues);
	vm->vsock_cid = s->vsock->guest_cid;
	vm->vsock_next_port = s->vsock->next_host_port;
	struct virtio_mmio_state *m = &vm->vsock_mmio;
	m->status = t->status, m->dev_feat_sel = t->dev_feat_sel, m->drv_feat_sel = t->drv_feat_sel;
	m->queue_sel = t->queue_sel, m->config_gen = t->config_gen, m->isr = t->isr;
	m->driver_features = t->driver_features;
	for (size_t i = 0; i < t->n_queues; i++) {
		const Ufsnap__VirtioQueue *q = t->queues[i];
		if ((q->num | q->last_avail | q->used_idx | q->signalled_used) > 0xffff)
			return BAD("virtqueue %zu index over 16 bits", i);
		m->q[i] = (struct virtio_mmio_queue_state){
			.desc = q->desc, .avail = q->avail, .used = q->used, .num = (uint16_t)q->num,
			.last_avail = (uint16_t)q->last_avail, .used_idx = (uint16_t)q->used_idx,
			.signalled_used = (uint16_t)q->signalled_used, .ready = q->ready,
		};
	}
	return 0;
}

static int get_snapshot(const Ufsnap__Snapshot *s, struct snap_meta *m)
{
	struct snap_vm_state *vm = &m->vm;
	int ret;

	if (!s->memory || !s->origin)
		return BAD("memory or origin missing");
	vm->mem_size = s->memory->size;
	if (vm->mem_size < VMM_MEM_MIN || vm->mem_size > VMM_MEM_MAX || (vm->mem_size & ((2u << 20) - 1)))
		return BAD("memory size %llu is not a VM size", (unsigned long long)vm->mem_size);
	m->nonzero_pages = s->memory->nonzero_pages;
	if (m->nonzero_pages > vm->mem_size / 4096)
		return BAD("more non-zero pages than pages");
	if (strlen(s->cpu_vendor) >= sizeof(m->cpu_vendor) || strlen(s->host_release) >= sizeof(m->host_release))
		return BAD("CPU vendor or host release string too long");
	strcpy(m->cpu_vendor, s->cpu_vendor);
	strcpy(m->host_release, s->host_release);
	m->created_unix_ns = s->created_unix_ns;
	if ((ret = get_cpuid("the source host", s->host_cpuid, s->n_host_cpuid, m->host_cpuid,
			     &m->n_host_cpuid)) ||
	    (ret = get_hash("kernel", &s->origin->kernel_sha256, m->origin.kernel)) ||
	    (ret = get_hash("initrd", &s->origin->initrd_sha256, m->origin.initrd)) ||
	    (ret = get_hash("agent", &s->origin->agent_sha256, m->origin.agent)))
		return ret;
	if (s->n_vcpus != 1)
		return vmm_err(-ENOTSUP, "meta.pb: %zu vCPUs; this VMM restores exactly 1", s->n_vcpus);
	if ((ret = get_vcpu(s->vcpus[0], &vm->vcpu)) ||
	    (ret = get_blob("pit2", &s->pit2, &vm->pit2, sizeof(vm->pit2))) ||
	    (ret = get_blob("clock", &s->clock, &vm->clock, sizeof(vm->clock))))
		return ret;
	if (s->n_irqchip != SNAP_NIRQCHIPS)
		return BAD("%zu irqchips, expected %d", s->n_irqchip, SNAP_NIRQCHIPS);
	for (uint32_t i = 0; i < SNAP_NIRQCHIPS; i++) {
		if ((ret = get_blob("irqchip", &s->irqchip[i], &vm->irqchip[i], sizeof(vm->irqchip[i]))))
			return ret;
		if (vm->irqchip[i].chip_id != i)
			return BAD("irqchip %u has chip id %u", i, vm->irqchip[i].chip_id);
	}
	vm->agent_ready = s->agent_ready;
	return get_devices(s, vm);
}

int snap_meta_decode(const uint8_t *buf, size_t len, struct snap_meta *m)
{
	int ret;
	memset(m, 0, sizeof(*m));
	Ufsnap__SnapshotFile *f = ufsnap__snapshot_file__unpack(NULL, len, buf);
	if (!f)
		return BAD("not a valid SnapshotFile (truncated or corrupted, %zu bytes)", len);
	if (f->magic != SNAP_MAGIC) {
		ret = vmm_err(-EINVAL, "meta.pb: magic 0x%08x is not a unifork snapshot's (0x%08x)",
			      f->magic, SNAP_MAGIC);
		goto out_file;
	}
	/* The wrapper's four fields are the same in every version: without
	 * the last two the file was cut short. */
	if (f->meta.len == 0 || f->meta_sha256.len == 0) {
		ret = BAD("no %s (truncated, %zu bytes)", f->meta.len ? "checksum" : "metadata", len);
		goto out_file;
	}
	if (f->format_version != SNAP_FORMAT_VERSION) {
		ret = vmm_err(-EPROTONOSUPPORT, "meta.pb: format version %u; this build reads version %u",
			      f->format_version, SNAP_FORMAT_VERSION);
		goto out_file;
	}
	uint8_t sha[SNAP_SHA256_LEN];
	snap_sha256(f->meta.data, f->meta.len, sha);
	if (f->meta_sha256.len != SNAP_SHA256_LEN || memcmp(sha, f->meta_sha256.data, SNAP_SHA256_LEN)) {
		ret = BAD("checksum mismatch over %zu bytes of metadata (corrupted or truncated)",
			  f->meta.len);
		goto out_file;
	}
	Ufsnap__Snapshot *s = ufsnap__snapshot__unpack(NULL, f->meta.len, f->meta.data);
	if (!s) {
		ret = BAD("metadata does not decode although its checksum matches");
		goto out_file;
	}
	m->format_version = f->format_version;
	ret = get_snapshot(s, m);
	ufsnap__snapshot__free_unpacked(s, NULL);
out_file:
	ufsnap__snapshot_file__free_unpacked(f, NULL);
	return ret;
}
