/* test_snapshot.c — the snapshot format without KVM: meta.pb round trip,
 * every refusal snap_open() owes a damaged or foreign snapshot, the sparse
 * memory file (io_uring and pwrite) and copy-on-write guest RAM over it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/snapshot.pb-c.h"
#include "snapshotter/snapshot.h"
#include "tests/unit/ut.h"
#include "vmm/err.h"

#define MEM (16ull << 20)

static void set_vendor(struct kvm_cpuid_entry2 *e, const char *v)
{
	*e = (struct kvm_cpuid_entry2){.function = 0, .eax = 0x10};
	memcpy(&e->ebx, v, 4);
	memcpy(&e->edx, v + 4, 4);
	memcpy(&e->ecx, v + 8, 4);
}

/* A CPUID table: vendor, leaf 1 and leaf 7.0 features. */
static uint32_t make_cpuid(struct kvm_cpuid_entry2 *e, const char *vendor, uint32_t leaf7_ebx)
{
	set_vendor(&e[0], vendor);
	e[1] = (struct kvm_cpuid_entry2){.function = 1, .ecx = 0x80000201u, .edx = 0x178bfbffu};
	e[2] = (struct kvm_cpuid_entry2){.function = 7, .index = 0,
					 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .ebx = leaf7_ebx};
	e[3] = (struct kvm_cpuid_entry2){.function = 0x40000000, .eax = 0x40000001};
	return 4;
}

static struct snap_meta *sample_meta(void)
{
	struct snap_meta *m = calloc(1, sizeof(*m));
	UT_ASSERT(m);
	m->format_version = SNAP_FORMAT_VERSION;
	strcpy(m->cpu_vendor, "AuthenticAMD");
	strcpy(m->host_release, "6.1.0-test");
	m->n_host_cpuid = make_cpuid(m->host_cpuid, "AuthenticAMD", 0x219c07ab);
	memset(m->origin.kernel, 0x11, SNAP_SHA256_LEN);
	memset(m->origin.initrd, 0x22, SNAP_SHA256_LEN);
	memset(m->origin.agent, 0x33, SNAP_SHA256_LEN);
	m->nonzero_pages = 3;
	m->created_unix_ns = 1700000000123456789ull;
	struct snap_vm_state *vm = &m->vm;
	vm->mem_size = MEM;
	struct snap_vcpu_state *v = &vm->vcpu;
	v->mp_state.mp_state = KVM_MP_STATE_RUNNABLE;
	v->regs.rip = 0xffffffff81000000ull;
	v->regs.rsp = 0xffffc90000003f00ull;
	v->sregs.cr3 = 0x1234000;
	v->sregs.apic_base = 0xfee00900;
	v->xsave_len = 4096 + 832;
	for (uint32_t i = 0; i < v->xsave_len; i++)
		v->xsave[i] = (uint8_t)(i * 7);
	v->has_xcrs = true;
	v->xcrs.nr_xcrs = 1;
	v->xcrs.xcrs[0].value = 7;
	v->debugregs.dr7 = 0x400;
	v->lapic.regs[0x20] = 0x5a;
	v->tsc_khz = 2894561;
	v->ncpuid = make_cpuid(v->cpuid, "AuthenticAMD", 0x219c07ab);
	v->nmsrs = 40;
	for (uint32_t i = 0; i < v->nmsrs; i++)
		v->msrs[i] = (struct kvm_msr_entry){.index = 0xc0000080 + i, .data = i * 0x1111ull};
	v->events.nmi.pending = 1;
	v->events.flags = KVM_VCPUEVENT_VALID_NMI_PENDING;
	vm->pit2.channels[0].count = 0xffff;
	vm->clock.clock = 987654321;
	for (uint32_t i = 0; i < SNAP_NIRQCHIPS; i++) {
		vm->irqchip[i].chip_id = i;
		vm->irqchip[i].chip.dummy[5] = (char)(i + 1);
	}
	vm->serial = (struct snap_serial_state){.ier = 2, .lcr = 3, .mcr = 8, .dll = 12,
						.thre_pending = true, .irq_level = true};
	vm->vsock_cid = 3;
	vm->vsock_next_port = 49161;
	vm->vsock_mmio.status = 0xf;
	vm->vsock_mmio.driver_features = 1ull << 32;
	vm->vsock_mmio.q[0] = (struct virtio_mmio_queue_state){.desc = 0x100000, .avail = 0x101000,
		.used = 0x102000, .num = 128, .last_avail = 7, .used_idx = 6, .ready = 1};
	vm->agent_ready = true;
	return m;
}

UT_TEST(snapshot_meta_round_trip)
{
	struct snap_meta *m = sample_meta(), *back = calloc(1, sizeof(*back));
	uint8_t *buf;
	size_t len;
	UT_EQ(snap_meta_encode(m, &buf, &len), 0);
	UT_ASSERT(len > 1000 && len < SNAP_META_MAX);
	UT_EQ(snap_meta_decode(buf, len, back), 0);
	UT_ASSERT(memcmp(m, back, sizeof(*m)) == 0);

	/* The FPU path (no XSAVE) and a VM without vsock and unknown hashes. */
	m->vm.vcpu.xsave_len = 0;
	memset(m->vm.vcpu.xsave, 0, sizeof(m->vm.vcpu.xsave));
	m->vm.vcpu.fpu.fcw = 0x37f;
	m->vm.vcpu.has_xcrs = false;
	memset(&m->vm.vcpu.xcrs, 0, sizeof(m->vm.vcpu.xcrs));
	m->vm.vsock_cid = 0;
	m->vm.vsock_next_port = 0;
	memset(&m->vm.vsock_mmio, 0, sizeof(m->vm.vsock_mmio));
	memset(&m->origin, 0, sizeof(m->origin));
	free(buf);
	UT_EQ(snap_meta_encode(m, &buf, &len), 0);
	UT_EQ(snap_meta_decode(buf, len, back), 0);
	UT_ASSERT(memcmp(m, back, sizeof(*m)) == 0);
	free(buf);
	free(back);
	free(m);
}

/* ---- a snapshot directory on disk ---- */

struct snapdir {
	char dir[PATH_MAX], meta[PATH_MAX + 16], mem[PATH_MAX + 16];
	uint8_t *buf;
	size_t len;
	struct kvm_cpuid_entry2 host[8];
	uint32_t nhost;
};

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	UT_ASSERT(fd >= 0);
	UT_EQ(write(fd, p, n), (long long)n);
	close(fd);
}

static void snapdir_make(struct snapdir *d, struct snap_meta *m)
{
	snprintf(d->dir, sizeof(d->dir), "/tmp/uf-snap-ut.XXXXXX");
	UT_ASSERT(mkdtemp(d->dir));
	snprintf(d->meta, sizeof(d->meta), "%s/meta.pb", d->dir);
	snprintf(d->mem, sizeof(d->mem), "%s/memory.bin", d->dir);
	UT_EQ(snap_meta_encode(m, &d->buf, &d->len), 0);
	write_file(d->meta, d->buf, d->len);
	int fd = open(d->mem, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	UT_ASSERT(fd >= 0);
	UT_EQ(ftruncate(fd, (off_t)m->vm.mem_size), 0);
	UT_EQ(pwrite(fd, "page", 4, 8192), 4);
	close(fd);
	d->nhost = make_cpuid(d->host, "AuthenticAMD", 0xffffffff);
}

static void snapdir_free(struct snapdir *d)
{
	unlink(d->meta);
	unlink(d->mem);
	rmdir(d->dir);
	free(d->buf);
}

/* snap_open with the synthetic host CPUID; returns its result. */
static int open_dir(struct snapdir *d, const struct snap_origin *origin)
{
	struct snap_expect exp = {.origin = origin, .host_cpuid = d->host, .n_host_cpuid = d->nhost};
	struct snap_image img;
	int r = snap_open(d->dir, &exp, &img);
	if (r == 0) {
		UT_ASSERT(img.mem_fd >= 0 && img.meta);
		snap_image_close(&img);
	} else {
		UT_ASSERT(strlen(vmm_strerror()) > 10 && !strchr(vmm_strerror(), '\n'));
	}
	return r;
}

UT_TEST(snapshot_open_accepts_a_good_snapshot)
{
	struct snap_meta *m = sample_meta();
	struct snapdir d;
	snapdir_make(&d, m);
	UT_EQ(open_dir(&d, NULL), 0);
	UT_EQ(open_dir(&d, &m->origin), 0);
	struct snap_origin partial = {0};
	memcpy(partial.agent, m->origin.agent, SNAP_SHA256_LEN);   /* only the agent known */
	UT_EQ(open_dir(&d, &partial), 0);
	snapdir_free(&d);
	free(m);
}

UT_TEST(snapshot_truncated_meta_is_refused)
{
	struct snap_meta *m = sample_meta();
	struct snapdir d;
	snapdir_make(&d, m);
	size_t cuts[] = {0, 1, 2, 5, 6, 7, 12, 100, d.len / 2, d.len - 40, d.len - 34, d.len - 33,
			 d.len - 32, d.len - 2, d.len - 1};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		write_file(d.meta, d.buf, cuts[i]);
		int r = open_dir(&d, NULL);
		if (r != -EBADMSG)
			UT_FAIL("meta.pb cut to %zu of %zu bytes: %d (%s)", cuts[i], d.len, r, vmm_strerror());
	}
	snapdir_free(&d);
	free(m);
}

UT_TEST(snapshot_flipped_byte_is_refused)
{
	struct snap_meta *m = sample_meta();
	struct snapdir d;
	snapdir_make(&d, m);
	uint8_t *bad = malloc(d.len);
	int checked = 0;
	for (size_t i = 0; i < d.len; i += (i < 64 || i + 64 > d.len) ? 1 : 61) {
		memcpy(bad, d.buf, d.len);
		bad[i] ^= 0x20;
		write_file(d.meta, bad, d.len);
		int r = open_dir(&d, NULL);
		if (r == 0)
			UT_FAIL("byte %zu of %zu flipped, snapshot accepted", i, d.len);
		UT_ASSERT(r == -EBADMSG || r == -EINVAL || r == -EPROTONOSUPPORT);
		checked++;
	}
	UT_ASSERT(checked > 150);
	/* A flip inside the metadata is a checksum mismatch, by name. */
	memcpy(bad, d.buf, d.len);
	bad[d.len / 2] ^= 1;
	write_file(d.meta, bad, d.len);
	UT_EQ(open_dir(&d, NULL), -EBADMSG);
	UT_ASSERT(strstr(vmm_strerror(), "checksum mismatch"));
	free(bad);
	snapdir_free(&d);
	free(m);
}

/* Re-wrap the metadata with another magic or version (checksum intact). */
static void rewrap(struct snapdir *d, uint32_t magic, uint32_t version)
{
	Ufsnap__SnapshotFile *f = ufsnap__snapshot_file__unpack(NULL, d->len, d->buf);
	UT_ASSERT(f);
	f->magic = magic;
	f->format_version = version;
	size_t n = ufsnap__snapshot_file__get_packed_size(f);
	uint8_t *out = malloc(n);
	ufsnap__snapshot_file__pack(f, out);
	write_file(d->meta, out, n);
	free(out);
	ufsnap__snapshot_file__free_unpacked(f, NULL);
}

UT_TEST(snapshot_wrong_magic_or_version_is_refused)
{
	struct snap_meta *m = sample_meta();
	struct snapdir d;
	snapdir_make(&d, m);
	rewrap(&d, SNAP_MAGIC, SNAP_FORMAT_VERSION + 1);
	UT_EQ(open_dir(&d, NULL), -EPROTONOSUPPORT);
	UT_ASSERT(strstr(vmm_strerror(), "format version 2"));
	rewrap(&d, SNAP_MAGIC, 0);
	UT_EQ(open_dir(&d, NULL), -EPROTONOSUPPORT);
	rewrap(&d, 0x464c457f, SNAP_FORMAT_VERSION);
	UT_EQ(open_dir(&d, NULL), -EINVAL);
	UT_ASSERT(strstr(vmm_strerror(), "not a unifork snapshot"));
	write_file(d.meta, "\x7f" "ELF\x02\x01\x01", 7);
	UT_EQ(open_dir(&d, NULL), -EBADMSG);
	rewrap(&d, SNAP_MAGIC, SNAP_FORMAT_VERSION);   /* back to good */
	UT_EQ(open_dir(&d, NULL), 0);
	snapdir_free(&d);
	free(m);
}

UT_TEST(snapshot_other_cpu_is_refused)
{
	struct snap_meta *m = sample_meta();
	struct snapdir d;
	snapdir_make(&d, m);
	d.nhost = make_cpuid(d.host, "GenuineIntel", 0xffffffff);
	UT_EQ(open_dir(&d, NULL), -ENOEXEC);
	UT_ASSERT(strstr(vmm_strerror(), "GenuineIntel"));
	/* Same vendor, but the host lacks one leaf-7 feature the guest saw. */
	d.nhost = make_cpuid(d.host, "AuthenticAMD", 0x219c07ab & ~(1u << 5));
	UT_EQ(open_dir(&d, NULL), -ENOEXEC);
	UT_ASSERT(strstr(vmm_strerror(), "7.0.ebx has features 0x00000020"));
	/* Bits the VMM sets itself (hypervisor, TSC deadline) need no host support. */
	d.nhost = make_cpuid(d.host, "AuthenticAMD", 0x219c07ab);
	m->vm.vcpu.cpuid[1].ecx |= (1u << 31) | (1u << 24);
	free(d.buf);
	UT_EQ(snap_meta_encode(m, &d.buf, &d.len), 0);
	write_file(d.meta, d.buf, d.len);
	UT_EQ(open_dir(&d, NULL), 0);
	snapdir_free(&d);
	free(m);
}

UT_TEST(snapshot_memory_file_mismatch_is_refused)
{
	struct snap_meta *m = sample_meta();
	struct snapdir d;
	snapdir_make(&d, m);
	UT_EQ(truncate(d.mem, (off_t)MEM - 4096), 0);
	UT_EQ(open_dir(&d, NULL), -EBADMSG);
	UT_ASSERT(strstr(vmm_strerror(), "truncated"));
	UT_EQ(truncate(d.mem, (off_t)MEM + 4096), 0);
	UT_EQ(open_dir(&d, NULL), -EBADMSG);
	unlink(d.mem);
	UT_EQ(open_dir(&d, NULL), -ENOENT);
	snapdir_free(&d);
	free(m);
}

UT_TEST(snapshot_hash_mismatch_is_refused)
{
	struct snap_meta *m = sample_meta();
	struct snapdir d;
	snapdir_make(&d, m);
	struct snap_origin want = m->origin;
	want.initrd[31] ^= 1;
	UT_EQ(open_dir(&d, &want), -ESTALE);
	UT_ASSERT(strstr(vmm_strerror(), "initramfs"));
	want = m->origin;
	want.kernel[0] ^= 0x80;
	UT_EQ(open_dir(&d, &want), -ESTALE);
	UT_ASSERT(strstr(vmm_strerror(), "kernel"));
	/* A snapshot that never recorded its agent cannot match a known one. */
	memset(m->origin.agent, 0, SNAP_SHA256_LEN);
	free(d.buf);
	UT_EQ(snap_meta_encode(m, &d.buf, &d.len), 0);
	write_file(d.meta, d.buf, d.len);
	want = m->origin;
	memset(want.agent, 0x33, SNAP_SHA256_LEN);
	UT_EQ(open_dir(&d, &want), -ESTALE);
	UT_ASSERT(strstr(vmm_strerror(), "unrecorded"));
	snapdir_free(&d);
	free(m);
}

UT_TEST(snapshot_sha256_known_answer)
{
	uint8_t h[SNAP_SHA256_LEN];
	char hex[2 * SNAP_SHA256_LEN + 1];
	snap_sha256("abc", 3, h);
	snap_hex(h, sizeof(h), hex);
	UT_ASSERT(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
	char path[] = "/tmp/uf-snap-sha.XXXXXX";
	int fd = mkstemp(path);
	UT_ASSERT(fd >= 0);
	UT_EQ(write(fd, "abc", 3), 3);
	close(fd);
	uint8_t f[SNAP_SHA256_LEN];
	UT_EQ(snap_sha256_file(path, f), 0);
	UT_ASSERT(memcmp(h, f, sizeof(h)) == 0);
	unlink(path);
	UT_EQ(snap_sha256_file(path, f), -ENOENT);
}

/* ---- the memory file ---- */

UT_TEST(snapshot_page_is_zero)
{
	uint8_t *p = aligned_alloc(4096, 4096);
	memset(p, 0, 4096);
	UT_ASSERT(snap_page_is_zero(p));
	for (size_t i = 0; i < 4096; i += 511) {
		p[i] = 0x80;
		UT_ASSERT(!snap_page_is_zero(p));
		p[i] = 0;
	}
	p[4095] = 1;
	UT_ASSERT(!snap_page_is_zero(p));
	free(p);
}

static void read_all(int fd, uint8_t *buf, uint64_t n)
{
	for (uint64_t off = 0; off < n;) {
		ssize_t r = pread(fd, buf + off, n - off, (off_t)off);
		UT_ASSERT(r > 0);
		off += (uint64_t)r;
	}
}

/* Guest RAM with a few pages written, one written back to zero and one only
 * read; the file must hold exactly the non-zero pages, the rest as holes. */
static void memfile_case(unsigned flags)
{
	struct vmm_mem mem = {0};
	UT_EQ(vmm_mem_init(&mem, MEM), 0);
	mem.host[0] = 1;
	mem.host[2 * 4096 - 1] = 2;
	memset(mem.host + 100 * 4096, 0xab, 4 * 4096);
	mem.host[MEM - 1] = 9;
	mem.host[50 * 4096 + 7] = 5;
	mem.host[50 * 4096 + 7] = 0;
	UT_EQ(*(volatile uint8_t *)(mem.host + 60 * 4096), 0);

	char path[] = "/tmp/uf-snap-mem.XXXXXX";
	int fd = mkstemp(path);
	UT_ASSERT(fd >= 0);
	unlink(path);
	struct snap_mem_stats st;
	UT_EQ(snap_mem_write(&mem, fd, flags, &st), 0);
	UT_EQ(st.pages, MEM / 4096);
	UT_EQ(st.nonzero_pages, 7);
	UT_EQ(st.writes, 3);                     /* runs: 0-1, 100-103, last */
	if (flags & SNAP_MEM_PWRITE)
		UT_ASSERT(!st.io_uring);
	else if (!st.io_uring)
		printf("    (io_uring unavailable: %s)\n", st.note);
	if (access("/proc/self/pagemap", R_OK) == 0)
		UT_ASSERT(st.scanned_pages < 64);   /* untouched pages never looked at */
	struct stat sb;
	UT_EQ(fstat(fd, &sb), 0);
	UT_EQ(sb.st_size, (long long)MEM);
	UT_ASSERT((uint64_t)sb.st_blocks * 512 <= 16 * 4096);
	UT_EQ(lseek(fd, 2 * 4096, SEEK_DATA), 100 * 4096);
	UT_EQ(lseek(fd, 100 * 4096, SEEK_HOLE), 104 * 4096);
	uint8_t *copy = malloc(MEM);
	read_all(fd, copy, MEM);
	UT_ASSERT(memcmp(copy, mem.host, MEM) == 0);

	/* Copy-on-write RAM over the file: same bytes, writes stay private. */
	struct vmm_mem cow = {0};
	UT_EQ(vmm_mem_init_file(&cow, fd, MEM), 0);
	UT_ASSERT(cow.cow_file);
	UT_ASSERT(memcmp(cow.host, mem.host, MEM) == 0);
	cow.host[100 * 4096] = 0;
	cow.host[200 * 4096] = 7;
	read_all(fd, copy, MEM);
	UT_ASSERT(memcmp(copy, mem.host, MEM) == 0);

	/* Snapshot of that CoW RAM: absent pages are the file's, all checked. */
	char path2[] = "/tmp/uf-snap-mem2.XXXXXX";
	int fd2 = mkstemp(path2);
	UT_ASSERT(fd2 >= 0);
	unlink(path2);
	UT_EQ(snap_mem_write(&cow, fd2, flags, &st), 0);
	UT_EQ(st.scanned_pages, MEM / 4096);
	UT_EQ(st.nonzero_pages, 8);
	read_all(fd2, copy, MEM);
	UT_ASSERT(memcmp(copy, cow.host, MEM) == 0);
	close(fd2);

	/* In place over RAM that is already mapped (and would be in a memslot). */
	struct vmm_mem inplace = {0};
	UT_EQ(vmm_mem_init(&inplace, MEM), 0);
	uint8_t *at = inplace.host;
	inplace.host[5] = 1;
	UT_EQ(vmm_mem_map_file(&inplace, fd), 0);
	UT_ASSERT(inplace.host == at && inplace.cow_file);
	UT_ASSERT(memcmp(inplace.host, mem.host, MEM) == 0);

	struct vmm_mem wrong = {0};
	UT_EQ(vmm_mem_init_file(&wrong, fd, 2 * MEM), -EINVAL);
	UT_EQ(ftruncate(fd, MEM - 4096), 0);
	UT_EQ(vmm_mem_map_file(&inplace, fd), -EINVAL);
	vmm_mem_release(&inplace);
	vmm_mem_release(&cow);
	vmm_mem_release(&mem);
	free(copy);
	close(fd);
}

UT_TEST(snapshot_memory_file_io_uring)
{
	memfile_case(0);
}

UT_TEST(snapshot_memory_file_pwrite)
{
	memfile_case(SNAP_MEM_PWRITE);
}
