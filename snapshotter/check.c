/* check.c — integrity and compatibility checks: sha256 (libcrypto), the CPU
 * vendor and the CPUID feature bits a snapshot needs from its host. */
#include "snapshotter/format.h"
#include "vmm/err.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void snap_sha256(const void *p, size_t n, uint8_t out[SNAP_SHA256_LEN])
{
	unsigned int len = SNAP_SHA256_LEN;
	if (!EVP_Digest(p, n, out, &len, EVP_sha256(), NULL))
		memset(out, 0, SNAP_SHA256_LEN);    /* never matches a real digest */
}

int snap_sha256_file(const char *path, uint8_t out[SNAP_SHA256_LEN])
{
	int ret = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vmm_errno(-errno, "sha256 of %s", path);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		ret = vmm_err(-ENOMEM, "sha256 of %s: libcrypto context", path);
		goto out;
	}
	static __thread uint8_t buf[1 << 16];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = vmm_errno(-errno, "sha256 of %s: read", path);
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	}
	unsigned int len = SNAP_SHA256_LEN;
	if (!EVP_DigestFinal_ex(ctx, out, &len))
		ret = vmm_err(-EIO, "sha256 of %s: libcrypto failed", path);
out:
	EVP_MD_CTX_free(ctx);
	close(fd);
	return ret;
}

void snap_hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
	out[2 * n] = 0;
}

int snap_hash_known(const uint8_t h[SNAP_SHA256_LEN])
{
	for (int i = 0; i < SNAP_SHA256_LEN; i++)
		if (h[i])
			return 1;
	return 0;
}

static const struct kvm_cpuid_entry2 *find(const struct kvm_cpuid_entry2 *e, uint32_t n,
					    uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < n; i++)
		if (e[i].function == fn &&
		    (!(e[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e[i].index == idx))
			return &e[i];
	return NULL;
}

void snap_cpu_vendor(const struct kvm_cpuid_entry2 *e, uint32_t n, char out[13])
{
	const struct kvm_cpuid_entry2 *l0 = find(e, n, 0, 0);
	out[0] = 0;
	if (!l0)
		return;
	memcpy(out, &l0->ebx, 4);
	memcpy(out + 4, &l0->edx, 4);
	memcpy(out + 8, &l0->ecx, 4);
	out[12] = 0;
}

enum { EAX, EBX, ECX, EDX };

static uint32_t reg(const struct kvm_cpuid_entry2 *e, int r)
{
	return r == EAX ? e->eax : r == EBX ? e->ebx : r == ECX ? e->ecx : e->edx;
}

/* The feature bitmaps a guest may rely on.  `exempt`: bits the VMM sets on
 * its own (hypervisor, TSC deadline: KVM reports it by capability, not in
 * CPUID) or KVM updates at run time from guest state (OSXSAVE, OSPKE). */
static const struct {
	uint32_t fn, idx;
	int r;
	uint32_t exempt;
	const char *name;
} feature_regs[] = {
	{0x1, 0, ECX, (1u << 31) | (1u << 27) | (1u << 24), "1.ecx"},
	{0x1, 0, EDX, 0, "1.edx"},
	{0x7, 0, EBX, 0, "7.0.ebx"},
	{0x7, 0, ECX, 1u << 4, "7.0.ecx"},
	{0x7, 0, EDX, 0, "7.0.edx"},
	{0x7, 1, EAX, 0, "7.1.eax"},
	{0xd, 0, EAX, 0, "0xd.0.eax (XCR0)"},
	{0xd, 0, EDX, 0, "0xd.0.edx (XCR0)"},
	{0xd, 1, EAX, 0, "0xd.1.eax"},
	{0x40000001, 0, EAX, 0, "0x40000001.eax (KVM features)"},
	{0x80000001, 0, ECX, 0, "0x80000001.ecx"},
	{0x80000001, 0, EDX, 0, "0x80000001.edx"},
	{0x80000007, 0, EDX, 0, "0x80000007.edx"},
	{0x80000008, 0, EBX, 0, "0x80000008.ebx"},
};

int snap_cpu_check(const struct snap_meta *m, const struct kvm_cpuid_entry2 *host, uint32_t nhost)
{
	const struct snap_vcpu_state *v = &m->vm.vcpu;
	char want[13], have[13];

	snap_cpu_vendor(v->cpuid, v->ncpuid, want);
	snap_cpu_vendor(host, nhost, have);
	if (!want[0] || strcmp(want, have) != 0)
		return vmm_err(-ENOEXEC, "snapshot CPU vendor \"%s\" (host \"%s\" made it), this host's "
			       "is \"%s\"", want, m->cpu_vendor, have);
	for (size_t i = 0; i < sizeof(feature_regs) / sizeof(feature_regs[0]); i++) {
		const struct kvm_cpuid_entry2 *s = find(v->cpuid, v->ncpuid, feature_regs[i].fn,
							feature_regs[i].idx);
		if (!s)
			continue;
		const struct kvm_cpuid_entry2 *h = find(host, nhost, feature_regs[i].fn,
							feature_regs[i].idx);
		uint32_t need = reg(s, feature_regs[i].r) & ~feature_regs[i].exempt;
		uint32_t got = h ? reg(h, feature_regs[i].r) : 0;
		if (need & ~got)
			return vmm_err(-ENOEXEC, "snapshot CPUID %s has features 0x%08x this host's KVM "
				       "lacks (has 0x%08x)", feature_regs[i].name, need & ~got, got);
	}
	return 0;
}
