/* ws.c — record, store, load and prefetch working sets (contract in ws.h). */
#include "forker/ws.h"
#include "vmm/err.h"
#include "vmm/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ  22
#define MADV_POPULATE_WRITE 23
#endif

#define PAGE        4096ull
#define PM_PRESENT  (1ull << 63)
#define PM_SWAPPED  (1ull << 62)
#define PM_FILE     (1ull << 61)
#define PM_BATCH    1024u

#define WS_MAGIC    0x53575546u     /* "UFWS" little-endian */
#define WS_VERSION  1u

struct ws_header {
	uint32_t magic, version;
	uint64_t mem_size;
	uint64_t n;
};

static int push(struct fork_ws *ws, size_t *cap, uint32_t first, uint32_t pages, uint32_t written)
{
	if (ws->n == FORK_WS_MAX_RANGES)
		return vmm_err(-E2BIG, "working set: more than %u ranges", FORK_WS_MAX_RANGES);
	if (ws->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct fork_ws_range *r = realloc(ws->r, nc * sizeof(*r));
		if (!r)
			return vmm_err(-ENOMEM, "working set: out of memory");
		ws->r = r;
		*cap = nc;
	}
	ws->r[ws->n++] = (struct fork_ws_range){first, pages, written};
	ws->pages += pages;
	if (written)
		ws->written_pages += pages;
	return 0;
}

int fork_ws_record(struct fork_ws *ws, const uint8_t *mem, uint64_t size)
{
	memset(ws, 0, sizeof(*ws));
	if (size % PAGE || size / PAGE > UINT32_MAX)
		return vmm_err(-EINVAL, "working set: bad RAM size %llu", (unsigned long long)size);
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pm < 0)
		return vmm_errno(-errno, "working set: open /proc/self/pagemap");
	ws->mem_size = size;
	uint64_t npages = size / PAGE, buf[PM_BATCH];
	size_t cap = 0;
	int ret = 0;
	/* The run being built: kind 0 = none, 1 = read, 2 = written. */
	uint32_t run_first = 0, run_len = 0, run_kind = 0;
	for (uint64_t i = 0; i < npages && !ret;) {
		uint64_t n = npages - i < PM_BATCH ? npages - i : PM_BATCH;
		off_t off = (off_t)(((uintptr_t)mem / PAGE + i) * sizeof(uint64_t));
		if (pread(pm, buf, n * sizeof(uint64_t), off) != (ssize_t)(n * sizeof(uint64_t))) {
			ret = vmm_errno(-errno, "working set: read pagemap");
			break;
		}
		for (uint64_t j = 0; j < n && !ret; j++) {
			uint64_t e = buf[j];
			uint32_t kind = 0;
			if (e & PM_PRESENT)
				kind = (e & PM_FILE) ? 1 : 2;
			else if (e & PM_SWAPPED)
				kind = 2;
			if (kind == run_kind && kind && run_len < UINT32_MAX) {
				run_len++;
				continue;
			}
			if (run_kind)
				ret = push(ws, &cap, run_first, run_len, run_kind == 2);
			run_kind = kind;
			run_first = (uint32_t)(i + j);
			run_len = 1;
		}
		i += n;
	}
	if (!ret && run_kind)
		ret = push(ws, &cap, run_first, run_len, run_kind == 2);
	close(pm);
	if (ret)
		fork_ws_free(ws);
	return ret;
}

int fork_ws_save(const struct fork_ws *ws, const char *path)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return vmm_err(-ENAMETOOLONG, "%s: path too long", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return vmm_errno(-errno, "working set: create %s", tmp);
	struct ws_header h = {WS_MAGIC, WS_VERSION, ws->mem_size, ws->n};
	int ret = 0;
	size_t body = ws->n * sizeof(ws->r[0]);
	if (write(fd, &h, sizeof(h)) != (ssize_t)sizeof(h) ||
	    (body && write(fd, ws->r, body) != (ssize_t)body) || fsync(fd) < 0)
		ret = vmm_errno(errno ? -errno : -EIO, "working set: write %s", tmp);
	if (close(fd) < 0 && !ret)
		ret = vmm_errno(-errno, "working set: close %s", tmp);
	if (!ret && rename(tmp, path) < 0)
		ret = vmm_errno(-errno, "working set: rename to %s", path);
	if (ret)
		unlink(tmp);
	return ret;
}

int fork_ws_load(struct fork_ws *ws, const char *path, uint64_t mem_size)
{
	memset(ws, 0, sizeof(*ws));
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return -ENOENT;
	uint8_t *buf = NULL;
	size_t len = 0;
	size_t max = sizeof(struct ws_header) + (size_t)FORK_WS_MAX_RANGES * sizeof(struct fork_ws_range);
	int ret = vmm_read_file("working set", path, max, &buf, &len);
	if (ret)
		return ret;
	struct ws_header h;
	if (len < sizeof(h)) {
		ret = vmm_err(-EBADMSG, "%s: %zu bytes, too short for a working set", path, len);
		goto out;
	}
	memcpy(&h, buf, sizeof(h));
	if (h.magic != WS_MAGIC || h.version != WS_VERSION) {
		ret = vmm_err(-EBADMSG, "%s: not a working set of version %u", path, WS_VERSION);
		goto out;
	}
	if (h.mem_size != mem_size) {
		ret = vmm_err(-EBADMSG, "%s: recorded for %llu MiB of RAM, the template has %llu MiB",
			      path, (unsigned long long)(h.mem_size >> 20),
			      (unsigned long long)(mem_size >> 20));
		goto out;
	}
	if (h.n > FORK_WS_MAX_RANGES || len != sizeof(h) + h.n * sizeof(struct fork_ws_range)) {
		ret = vmm_err(-EBADMSG, "%s: %llu ranges do not match its %zu bytes", path,
			      (unsigned long long)h.n, len);
		goto out;
	}
	uint64_t npages = mem_size / PAGE;
	struct fork_ws_range *r = h.n ? malloc(h.n * sizeof(*r)) : NULL;
	if (h.n && !r) {
		ret = vmm_err(-ENOMEM, "working set: out of memory");
		goto out;
	}
	if (h.n)
		memcpy(r, buf + sizeof(h), h.n * sizeof(*r));
	ws->r = r;
	ws->n = h.n;
	ws->mem_size = mem_size;
	for (size_t i = 0; i < ws->n; i++) {
		if (r[i].pages == 0 || r[i].first >= npages || r[i].pages > npages - r[i].first ||
		    r[i].written > 1) {
			ret = vmm_err(-EBADMSG, "%s: range %zu (page %u, %u pages) outside %llu pages",
				      path, i, r[i].first, r[i].pages, (unsigned long long)npages);
			fork_ws_free(ws);
			goto out;
		}
		ws->pages += r[i].pages;
		if (r[i].written)
			ws->written_pages += r[i].pages;
	}
out:
	free(buf);
	return ret;
}

int fork_ws_prefetch(const struct fork_ws *ws, uint8_t *mem, uint64_t mem_size)
{
	if (ws->n && ws->mem_size != mem_size)
		return vmm_err(-EINVAL, "working set of %llu bytes for RAM of %llu",
			       (unsigned long long)ws->mem_size, (unsigned long long)mem_size);
	for (size_t i = 0; i < ws->n; i++) {
		const struct fork_ws_range *r = &ws->r[i];
		int advice = r->written ? MADV_POPULATE_WRITE : MADV_POPULATE_READ;
		if (madvise(mem + (uint64_t)r->first * PAGE, (uint64_t)r->pages * PAGE, advice) < 0)
			return vmm_errno(-errno, "working set: prefault pages %u..%u", r->first,
					 r->first + r->pages - 1);
	}
	return 0;
}

void fork_ws_free(struct fork_ws *ws)
{
	free(ws->r);
	memset(ws, 0, sizeof(*ws));
}
