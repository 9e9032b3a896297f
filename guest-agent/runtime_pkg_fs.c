/* runtime_pkg_fs.c — path rules and entry creation for the package reader
 * (runtime_pkg_fs.h), and agent_pkg_clear().  Every path is walked one
 * component at a time from the root fd with O_NOFOLLOW | O_DIRECTORY, so
 * nothing is ever created through a symlink, whatever the archive holds. */
#include "guest-agent/runtime_pkg_fs.h"
#include "guest-agent/runtime_pkg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLEAR_DEPTH_MAX (2 * PKG_DEPTH_MAX)

static int clear_at(int dfd, unsigned depth);

int pkg_norm_path(const char *in, char *out, const char **why)
{
	size_t o = 0;
	unsigned depth = 0;

	*why = "";
	if (in[0] == '/') {
		*why = "absolute path";
		return -EPERM;
	}
	for (const char *p = in; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t n = strcspn(p, "/");
		if (n == 1 && p[0] == '.') {
			p += n;
			continue;
		}
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			*why = "'..' in path";
			return -EPERM;
		}
		if (n > PKG_NAME_MAX) {
			*why = "path component over 255 bytes";
			return -ENAMETOOLONG;
		}
		if (o + (o ? 1 : 0) + n + 1 > PKG_PATH_MAX) {
			*why = "path over 4095 bytes";
			return -ENAMETOOLONG;
		}
		if (o) {
			if (++depth > PKG_DEPTH_MAX) {
				*why = "nested deeper than 64 directories";
				return -EPERM;
			}
			out[o++] = '/';
		}
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}
	out[o] = '\0';
	return o ? 0 : 1;
}

int pkg_check_link_target(const char *t)
{
	size_t len = strlen(t);
	if (len == 0 || len >= PKG_PATH_MAX || t[0] == '/')
		return -EPERM;
	for (const char *p = t; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -EPERM;
		p += n;
		while (*p == '/')
			p++;
	}
	return 0;
}

/* Open the directory that holds the last component of `path` (normalised),
 * creating missing directories on the way.  Returns the fd (caller closes)
 * with *leaf pointing into path, or -errno (-EPERM: a component is a
 * symlink or not a directory). */
static int open_parent(int root, const char *path, const char **leaf)
{
	char comp[PKG_NAME_MAX + 1];
	int dfd = fcntl(root, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0)
		return -errno;
	const char *p = path;
	for (;;) {
		size_t n = strcspn(p, "/");
		if (p[n] == '\0') {
			*leaf = p;
			return dfd;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		int fd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT) {
			if (mkdirat(dfd, comp, 0755) < 0 && errno != EEXIST) {
				int e = -errno;
				close(dfd);
				return e;
			}
			fd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		int e = fd < 0 ? (errno == ENOTDIR || errno == ELOOP ? -EPERM : -errno) : 0;
		close(dfd);
		if (e)
			return e;
		dfd = fd;
		p += n + 1;
	}
}

int pkg_make_dir(int root, const char *path)
{
	const char *leaf;
	int dfd = open_parent(root, path, &leaf);
	if (dfd < 0)
		return dfd;
	int rc = 0;
	if (mkdirat(dfd, leaf, 0755) < 0) {
		struct stat st;
		rc = -errno;
		if (rc == -EEXIST && fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0)
			rc = S_ISDIR(st.st_mode) ? 0 : -EPERM;
	}
	close(dfd);
	return rc;
}

int pkg_create_file(int root, const char *path, mode_t mode)
{
	const char *leaf;
	int dfd = open_parent(root, path, &leaf);
	if (dfd < 0)
		return dfd;
	int fd = openat(dfd, leaf, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
	int rc = fd < 0 ? (errno == ELOOP || errno == EISDIR ? -EPERM : -errno) : 0;
	close(dfd);
	if (rc)
		return rc;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || fchmod(fd, mode) < 0) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

int pkg_make_symlink(int root, const char *path, const char *target)
{
	if (pkg_check_link_target(target) < 0)
		return -EPERM;
	const char *leaf;
	int dfd = open_parent(root, path, &leaf);
	if (dfd < 0)
		return dfd;
	int rc = symlinkat(target, dfd, leaf) < 0 ? -errno : 0;
	close(dfd);
	return rc == -EEXIST ? -EPERM : rc;
}

int pkg_make_hardlink(int root, const char *path, const char *target)
{
	const char *leaf, *tleaf;
	struct stat st;
	int tfd = open_parent(root, target, &tleaf);
	if (tfd < 0)
		return tfd == -ENOENT ? -EPERM : tfd;
	if (fstatat(tfd, tleaf, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
		close(tfd);
		return -EPERM;
	}
	int dfd = open_parent(root, path, &leaf);
	if (dfd < 0) {
		close(tfd);
		return dfd;
	}
	int rc = linkat(tfd, tleaf, dfd, leaf, 0) < 0 ? -errno : 0;
	close(dfd);
	close(tfd);
	return rc == -EEXIST ? -EPERM : rc;
}

/* One pass over dfd's entries; *removed counts what went. */
static int clear_pass(int dfd, DIR *d, unsigned depth, unsigned *removed)
{
	struct dirent *de;
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de)
			return errno ? -errno : 0;
		const char *n = de->d_name;
		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		if (unlinkat(dfd, n, 0) == 0) {
			(*removed)++;
			continue;
		}
		if (errno != EISDIR && errno != EPERM)
			return -errno;
		int sub = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return -errno;
		int rc = clear_at(sub, depth + 1);
		close(sub);
		if (rc < 0)
			return rc;
		if (unlinkat(dfd, n, AT_REMOVEDIR) < 0)
			return -errno;
		(*removed)++;
	}
}

static int clear_at(int dfd, unsigned depth)
{
	if (depth > CLEAR_DEPTH_MAX)
		return -ELOOP;
	int fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = -errno;
		close(fd);
		return e;
	}
	/* Entries removed while a directory is read may shift the rest: pass
	 * again until a pass finds nothing left to remove. */
	int rc;
	unsigned removed;
	do {
		removed = 0;
		rc = clear_pass(dfd, d, depth, &removed);
		rewinddir(d);
	} while (rc == 0 && removed > 0);
	closedir(d);
	return rc;
}

int agent_pkg_clear(int dirfd)
{
	return clear_at(dirfd, 0);
}
