/* template.c — templates: sealed memfds with a guest image and the vCPU
 * state to start clones in; made fresh (the micro-guest) or from a running
 * clone (clone of a clone).  Contract in cow.h. */
#include "forker/cow.h"
#include "vmm/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096ull
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_FILE    (1ull << 61)     /* file page or shared anonymous */
#define PM_BATCH   512u

static int new_memfd(struct fork_template *t, uint64_t mem_size)
{
	memset(t, 0, sizeof(*t));
	t->memfd = -1;
	if (mem_size == 0 || mem_size % PAGE)
		return vmm_err(-EINVAL, "template: size %llu is not a positive multiple of 4 KiB",
			       (unsigned long long)mem_size);
	t->memfd = memfd_create("unifork-template", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (t->memfd < 0)
		return vmm_errno(-errno, "template: memfd_create");
	if (ftruncate(t->memfd, (off_t)mem_size) < 0) {
		int ret = vmm_errno(-errno, "template: size memfd to %llu", (unsigned long long)mem_size);
		close(t->memfd);
		t->memfd = -1;
		return ret;
	}
	t->mem_size = mem_size;
	return 0;
}

static int seal(struct fork_template *t)
{
	if (fcntl(t->memfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
		return vmm_errno(-errno, "template: seal memfd");
	return 0;
}

int fork_template_create(struct fork_template *t, uint64_t mem_size, uint8_t **image)
{
	int ret = new_memfd(t, mem_size);
	if (ret < 0)
		return ret;
	void *p = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, t->memfd, 0);
	if (p == MAP_FAILED) {
		ret = vmm_errno(-errno, "template: map image");
		fork_template_release(t);
		return ret;
	}
	*image = p;
	return 0;
}

int fork_template_seal(struct fork_template *t, uint8_t *image)
{
	/* F_SEAL_WRITE is refused while a shared writable mapping exists. */
	if (munmap(image, t->mem_size) < 0)
		return vmm_errno(-errno, "template: unmap image");
	return seal(t);
}

int fork_template_microguest(struct fork_template *t, uint8_t *image, struct fork_shell *sh,
			     enum vmm_mg_answer_mode mode)
{
	int ret = vmm_mg_layout(image, t->mem_size, mode);
	if (ret < 0)
		return ret;
	if (ioctl(sh->vcpu.fd, KVM_GET_SREGS, &t->state.sregs) < 0)
		return vmm_errno(-errno, "template: KVM_GET_SREGS");
	vmm_mg_cpu_state(mode, &t->state.regs, &t->state.sregs);
	t->state.answer = mode;
	return 0;
}

/* pread/pwrite for kernels whose copy_file_range refuses memfds. */
static ssize_t copy_chunk_rw(int from, int to, off_t off, uint64_t len)
{
	enum { CHUNK = 256 << 10 };
	size_t n = len < CHUNK ? (size_t)len : CHUNK;
	uint8_t *buf = malloc(n);
	if (!buf) {
		errno = ENOMEM;
		return -1;
	}
	ssize_t r = pread(from, buf, n, off);
	if (r > 0 && pwrite(to, buf, (size_t)r, off) != r)
		r = -1;
	int e = errno;
	free(buf);
	errno = e;
	return r;
}

/* Copy [off, off+len) from one fd to the same offset of another. */
static int copy_range(int from, int to, off_t off, uint64_t len)
{
	while (len > 0) {
		loff_t in = off, out = off;
		ssize_t n = copy_file_range(from, &in, to, &out, len, 0);
		if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
			n = copy_chunk_rw(from, to, off, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return vmm_errno(n < 0 ? -errno : -EIO, "template: copy parent image at %lld",
					 (long long)off);
		off += n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* The first `size` bytes of `from`, hole-preserving (SEEK_DATA/SEEK_HOLE). */
static int copy_sparse(int from, uint64_t size, int to)
{
	off_t end = (off_t)size, data = 0;

	for (;;) {
		data = lseek(from, data, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			return 0;
		if (data < 0)
			return vmm_errno(-errno, "template: SEEK_DATA in the source image");
		if (data >= end)
			return 0;
		off_t hole = lseek(from, data, SEEK_HOLE);
		if (hole < 0)
			return vmm_errno(-errno, "template: SEEK_HOLE in the source image");
		if (hole > end)
			hole = end;
		int ret = copy_range(from, to, data, (uint64_t)(hole - data));
		if (ret < 0)
			return ret;
		if (hole >= end)
			return 0;
		data = hole;
	}
}

/* The clone's own pages (copied on write, possibly swapped out) on top:
 * /proc/self/pagemap tells them from the template's file pages.  Without
 * pagemap every page of the clone is copied. */
static int copy_private(const struct fork_clone *c, int to)
{
	uint64_t npages = c->mem_size / PAGE, pm[PM_BATCH];
	int pmfd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	for (uint64_t i = 0; i < npages;) {
		uint64_t n = npages - i < PM_BATCH ? npages - i : PM_BATCH;
		if (pmfd >= 0) {
			off_t off = (off_t)(((uintptr_t)c->mem / PAGE + i) * sizeof(uint64_t));
			if (pread(pmfd, pm, n * sizeof(uint64_t), off) != (ssize_t)(n * sizeof(uint64_t))) {
				int ret = vmm_errno(-errno, "template: read pagemap");
				close(pmfd);
				return ret;
			}
		}
		for (uint64_t j = 0; j < n; j++) {
			bool priv = pmfd < 0 || (pm[j] & PM_SWAPPED) ||
				    ((pm[j] & PM_PRESENT) && !(pm[j] & PM_FILE));
			if (!priv)
				continue;
			off_t off = (off_t)((i + j) * PAGE);
			if (pwrite(to, c->mem + off, PAGE, off) != (ssize_t)PAGE) {
				int ret = vmm_errno(-errno, "template: write clone page 0x%llx",
						    (unsigned long long)off);
				if (pmfd >= 0)
					close(pmfd);
				return ret;
			}
		}
		i += n;
	}
	if (pmfd >= 0)
		close(pmfd);
	return 0;
}

int fork_template_from_clone(struct fork_template *t, struct fork_clone *c)
{
	struct vmm_vcpu *v = &c->shell->vcpu;
	int ret = new_memfd(t, c->mem_size);
	if (ret < 0)
		return ret;

	/* Complete the exit the clone stopped in (KVM finishes an I/O or MMIO
	 * instruction on the next KVM_RUN) without running guest code. */
	v->run->immediate_exit = 1;
	int r = ioctl(v->fd, KVM_RUN, 0);
	int err = errno;
	v->run->immediate_exit = 0;
	if (r == 0 || err != EINTR) {
		ret = vmm_errno(r == 0 ? -EIO : -err, "template: complete the pending exit");
		goto err_release;
	}
	if (ioctl(v->fd, KVM_GET_SREGS, &t->state.sregs) < 0 ||
	    ioctl(v->fd, KVM_GET_REGS, &t->state.regs) < 0) {
		ret = vmm_errno(-errno, "template: read the clone's vCPU state");
		goto err_release;
	}
	t->state.answer = c->tmpl->state.answer;

	ret = copy_sparse(c->tmpl->memfd, c->tmpl->mem_size, t->memfd);
	if (ret < 0)
		goto err_release;
	ret = copy_private(c, t->memfd);
	if (ret < 0)
		goto err_release;
	ret = seal(t);
	if (ret < 0)
		goto err_release;
	return 0;

err_release:
	fork_template_release(t);
	return ret;
}

int fork_template_from_fd(struct fork_template *t, int fd, uint64_t size)
{
	int ret = new_memfd(t, size);
	if (ret < 0)
		return ret;
	if ((ret = copy_sparse(fd, size, t->memfd)) < 0 || (ret = seal(t)) < 0)
		fork_template_release(t);
	return ret;
}

void fork_template_release(struct fork_template *t)
{
	if (t->memfd >= 0)
		close(t->memfd);
	t->memfd = -1;
	t->mem_size = 0;
}
