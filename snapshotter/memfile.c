/* memfile.c — sparse memory files: zero-page detection, batched io_uring
 * writes with a pwrite() fallback. */
#include "snapshotter/memfile.h"
#include "vmm/err.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QDEPTH      32u
#define RUN_MAX     (4u << 20)          /* bytes per write request */
#define PM_CHUNK    4096u               /* pagemap entries read at a time */
#define PM_PRESENT  (1ull << 63)
#define PM_SWAPPED  (1ull << 62)

bool snap_page_is_zero(const void *p)
{
	const uint64_t *w = p;
	for (size_t i = 0; i < SNAP_PAGE_SIZE / 8; i += 8)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7])
			return false;
	return true;
}

struct writer {
	const struct vmm_mem *mem;
	int fd;
	bool uring;
	struct io_uring ring;
	struct {
		uint64_t off;
		uint32_t len;
		bool busy;
	} slot[QDEPTH];
	unsigned inflight;
	struct snap_mem_stats *st;
};

static int pwrite_all(int fd, const uint8_t *p, uint64_t off, uint64_t len)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vmm_errno(-errno, "memory file: pwrite of %llu bytes at 0x%llx",
					 (unsigned long long)len, (unsigned long long)off);
		if (n == 0)
			return vmm_err(-EIO, "memory file: pwrite wrote nothing at 0x%llx",
				       (unsigned long long)off);
		p += n, off += (uint64_t)n, len -= (uint64_t)n;
	}
	return 0;
}

/* Wait for at least `min` completions and retire them.  A short write is
 * finished synchronously (it does not happen on regular files in practice). */
static int reap(struct writer *w, unsigned min)
{
	int ret = 0;
	int r = io_uring_submit_and_wait(&w->ring, min);
	if (r < 0 && r != -EINTR)
		return vmm_errno(r, "memory file: io_uring_submit_and_wait");
	struct io_uring_cqe *cqe;
	while (w->inflight && io_uring_peek_cqe(&w->ring, &cqe) == 0) {
		unsigned i = (unsigned)cqe->user_data;
		int res = cqe->res;
		io_uring_cqe_seen(&w->ring, cqe);
		if (i >= QDEPTH || !w->slot[i].busy)
			return vmm_err(-EIO, "memory file: io_uring completion for unknown request %u", i);
		uint64_t off = w->slot[i].off, len = w->slot[i].len;
		w->slot[i].busy = false;
		w->inflight--;
		if (ret)
			continue;
		if (res < 0)
			ret = vmm_errno(res, "memory file: write of %llu bytes at 0x%llx",
					(unsigned long long)len, (unsigned long long)off);
		else if ((uint64_t)res < len)
			ret = pwrite_all(w->fd, w->mem->host + off + (uint64_t)res, off + (uint64_t)res,
					 len - (uint64_t)res);
	}
	return ret;
}

static int submit(struct writer *w, uint64_t off, uint32_t len)
{
	int ret;
	w->st->writes++;
	if (!w->uring)
		return pwrite_all(w->fd, w->mem->host + off, off, len);
	while (w->inflight == QDEPTH)
		if ((ret = reap(w, 1)))
			return ret;
	unsigned i = 0;
	while (w->slot[i].busy)
		i++;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
	if (!sqe) {
		if ((ret = io_uring_submit(&w->ring)) < 0)
			return vmm_errno(ret, "memory file: io_uring_submit");
		if (!(sqe = io_uring_get_sqe(&w->ring)))
			return vmm_err(-EBUSY, "memory file: io_uring submission queue full");
	}
	io_uring_prep_write(sqe, w->fd, w->mem->host + off, len, off);
	io_uring_sqe_set_data64(sqe, i);
	w->slot[i].off = off;
	w->slot[i].len = len;
	w->slot[i].busy = true;
	w->inflight++;
	return 0;
}

/* Fill pm[0..n) with pagemap entries for pages [first, first+n) of RAM;
 * on any failure mark them present (they are then checked for zeros). */
static void pagemap_read(int pmfd, const struct vmm_mem *mem, uint64_t first, uint64_t *pm, size_t n)
{
	off_t pos = (off_t)(((uintptr_t)mem->host / SNAP_PAGE_SIZE + first) * sizeof(uint64_t));
	size_t want = n * sizeof(uint64_t), got = 0;
	while (pmfd >= 0 && got < want) {
		ssize_t r = pread(pmfd, (uint8_t *)pm + got, want - got, pos + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got < want)
		for (size_t i = 0; i < n; i++)
			pm[i] = PM_PRESENT;
}

static int scan(struct writer *w, int pmfd)
{
	const struct vmm_mem *mem = w->mem;
	struct snap_mem_stats *st = w->st;
	uint64_t pm[PM_CHUNK];
	uint64_t run = 0, run_len = 0;          /* pages */
	int ret;

	for (uint64_t base = 0; base < st->pages; base += PM_CHUNK) {
		size_t n = st->pages - base < PM_CHUNK ? (size_t)(st->pages - base) : PM_CHUNK;
		pagemap_read(pmfd, mem, base, pm, n);
		for (size_t i = 0; i < n; i++) {
			uint64_t p = base + i;
			bool data = false;
			if (pm[i] & (PM_PRESENT | PM_SWAPPED)) {
				st->scanned_pages++;
				data = !snap_page_is_zero(mem->host + p * SNAP_PAGE_SIZE);
			}
			if (data) {
				st->nonzero_pages++;
				if (!run_len)
					run = p;
				run_len++;
			}
			if (run_len && (!data || run_len * SNAP_PAGE_SIZE == RUN_MAX)) {
				if ((ret = submit(w, run * SNAP_PAGE_SIZE, (uint32_t)(run_len * SNAP_PAGE_SIZE))))
					return ret;
				run_len = 0;
			}
		}
	}
	if (run_len)
		return submit(w, run * SNAP_PAGE_SIZE, (uint32_t)(run_len * SNAP_PAGE_SIZE));
	return 0;
}

int snap_mem_write(const struct vmm_mem *mem, int fd, unsigned flags, struct snap_mem_stats *st)
{
	int ret;
	struct writer *w = calloc(1, sizeof(*w));
	if (!w)
		return vmm_err(-ENOMEM, "memory file: out of memory");
	memset(st, 0, sizeof(*st));
	w->mem = mem;
	w->fd = fd;
	w->st = st;
	st->pages = mem->size / SNAP_PAGE_SIZE;

	if (ftruncate(fd, (off_t)mem->size) < 0) {
		ret = vmm_errno(-errno, "memory file: ftruncate to %llu bytes",
				(unsigned long long)mem->size);
		goto out_free;
	}
	if (flags & SNAP_MEM_PWRITE) {
		snprintf(st->note, sizeof(st->note), "pwrite requested");
	} else if ((ret = io_uring_queue_init(QDEPTH, &w->ring, 0)) == 0) {
		w->uring = st->io_uring = true;
	} else if (ret == -ENOSYS || ret == -EPERM || ret == -ENOMEM) {
		snprintf(st->note, sizeof(st->note), "io_uring_queue_init: %s; used pwrite",
			 strerror(-ret));
	} else {
		vmm_errno(ret, "memory file: io_uring_queue_init");
		goto out_free;
	}

	/* Absent pages of anonymous RAM are zeros without looking. */
	int pmfd = mem->cow_file ? -1 : open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	ret = scan(w, pmfd);
	if (pmfd >= 0)
		close(pmfd);
	while (w->uring && w->inflight) {
		unsigned before = w->inflight;
		int r = reap(w, w->inflight);
		if (r && !ret)
			ret = r;
		if (r && w->inflight == before)
			break;          /* the ring itself fails: nothing more will complete */
	}
	if (!ret && fdatasync(fd) < 0)
		ret = vmm_errno(-errno, "memory file: fdatasync");
	if (w->uring)
		io_uring_queue_exit(&w->ring);
out_free:
	free(w);
	return ret;
}
