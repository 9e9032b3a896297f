/* snapshot.c — snap_save(): a paused VM into a snapshot directory, written
 * beside its final name and renamed into place. */
#include "snapshotter/snapshot.h"
#include "snapshotter/devices.h"
#include "vmm/err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static uint64_t us_since(uint64_t t0)
{
	return (vmm_now_ns() - t0) / 1000;
}

/* out = dir/name; -ENAMETOOLONG (with context) when it does not fit. */
static int path_in(char *out, size_t n, const char *dir, const char *name)
{
	int k = snprintf(out, n, "%s/%s", dir, name);
	if (k < 0 || (size_t)k >= n)
		return vmm_err(-ENAMETOOLONG, "%s/%s: path too long", dir, name);
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n, const char *what)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return vmm_errno(w < 0 ? -errno : -EIO, "%s: write", what);
		p += w, n -= (size_t)w;
	}
	return 0;
}

static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return vmm_errno(-errno, "open %s", path);
	int ret = fsync(fd) < 0 ? vmm_errno(-errno, "fsync %s", path) : 0;
	close(fd);
	return ret;
}

/* Remove a snapshot directory's files and the directory itself. */
static void remove_snapshot_dir(const char *dir)
{
	char p[PATH_MAX];
	if (path_in(p, sizeof(p), dir, SNAP_META_FILE) == 0)
		unlink(p);
	if (path_in(p, sizeof(p), dir, SNAP_MEM_FILE) == 0)
		unlink(p);
	rmdir(dir);
}

/* The parent directory of `path` (for the fsync that makes a rename last). */
static void parent_of(const char *path, char *out, size_t n)
{
	snprintf(out, n, "%s", path);
	char *slash = strrchr(out, '/');
	if (!slash)
		snprintf(out, n, ".");
	else if (slash == out)
		out[1] = 0;
	else
		*slash = 0;
}

/* Move the finished tmp directory to `dir`; an existing snapshot there is
 * exchanged atomically and then removed. */
static int publish(const char *tmp, const char *dir)
{
	if (rename(tmp, dir) == 0)
		return 0;
	if (errno != ENOTEMPTY && errno != EEXIST)
		return vmm_errno(-errno, "rename %s to %s", tmp, dir);
	char meta[PATH_MAX];
	if (path_in(meta, sizeof(meta), dir, SNAP_META_FILE) || access(meta, F_OK) != 0)
		return vmm_err(-EEXIST, "%s exists and is not a snapshot: not replacing it", dir);
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) < 0)
		return vmm_errno(-errno, "exchange %s with the snapshot at %s", tmp, dir);
	remove_snapshot_dir(tmp);           /* now the old snapshot */
	return 0;
}

static int fill_meta(struct vmm_vm *vm, struct snap_meta *m, const struct snap_origin *origin)
{
	int ret = snap_supported_cpuid(vm->kvm.kvmfd, m->host_cpuid, SNAP_MAX_CPUID, &m->n_host_cpuid);
	if (ret)
		return ret;
	snap_cpu_vendor(m->host_cpuid, m->n_host_cpuid, m->cpu_vendor);
	if (origin)
		m->origin = *origin;
	struct utsname u;
	if (uname(&u) == 0)
		snprintf(m->host_release, sizeof(m->host_release), "%s", u.release);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	m->created_unix_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	m->format_version = SNAP_FORMAT_VERSION;
	return 0;
}

static int write_meta(const char *tmp, const struct snap_meta *m, uint64_t *bytes)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int ret = snap_meta_encode(m, &buf, &len);
	if (ret)
		return ret;
	char path[PATH_MAX];
	if ((ret = path_in(path, sizeof(path), tmp, SNAP_META_FILE)))
		goto out_free;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = vmm_errno(-errno, "create %s", path);
		goto out_free;
	}
	if (!(ret = write_all(fd, buf, len, path)) && fsync(fd) < 0)
		ret = vmm_errno(-errno, "fsync %s", path);
	close(fd);
	*bytes = len;
out_free:
	free(buf);
	return ret;
}

static int write_memory(struct vmm_vm *vm, const char *tmp, unsigned flags, struct snap_save_stats *st)
{
	char path[PATH_MAX];
	int ret = path_in(path, sizeof(path), tmp, SNAP_MEM_FILE);
	if (ret)
		return ret;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return vmm_errno(-errno, "create %s", path);
	ret = snap_mem_write(&vm->mem, fd, flags, &st->mem);
	struct stat sb;
	if (!ret && fstat(fd, &sb) == 0)
		st->mem_file_alloc = (uint64_t)sb.st_blocks * 512;
	close(fd);
	return ret;
}

int snap_save(struct vmm_vm *vm, const char *dir, const struct snap_origin *origin,
	      unsigned mem_flags, struct snap_save_stats *st)
{
	int ret;
	uint64_t t0 = vmm_now_ns();
	struct snap_save_stats local;
	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));

	if (vmm_vm_is_running(vm))
		return vmm_err(-EBUSY, "snapshot of a running VM: stop and join its run thread first");
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", dir) >= sizeof(tmp))
		return vmm_err(-ENAMETOOLONG, "snapshot directory name too long");
	struct snap_meta *m = calloc(1, sizeof(*m));
	if (!m)
		return vmm_err(-ENOMEM, "snapshot: out of memory");

	/* Devices first: afterwards nothing but us touches the VM. */
	snap_devices_quiesce(vm);
	snap_devices_capture(vm, &m->vm);
	if ((ret = snap_vmstate_capture(vm, &m->vm)))
		goto out_resume;
	st->state_us = us_since(t0);

	if (!mkdtemp(tmp)) {
		ret = vmm_errno(-errno, "create %s", tmp);
		goto out_resume;
	}
	uint64_t t1 = vmm_now_ns();
	if ((ret = write_memory(vm, tmp, mem_flags, st)))
		goto out_rm;
	st->memory_us = us_since(t1);
	m->nonzero_pages = st->mem.nonzero_pages;
	if ((ret = fill_meta(vm, m, origin)) || (ret = write_meta(tmp, m, &st->meta_bytes)) ||
	    (ret = fsync_path(tmp)) || (ret = publish(tmp, dir)))
		goto out_rm;
	char parent[PATH_MAX];
	parent_of(dir, parent, sizeof(parent));
	ret = fsync_path(parent);
	st->total_us = us_since(t0);
	goto out_resume;
out_rm:
	remove_snapshot_dir(tmp);
out_resume:;
	int r = snap_devices_resume(vm);
	free(m);
	return ret ? ret : r;
}
