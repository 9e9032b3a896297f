/* registry.c — the function registry's files (contract in registry.h). */
#include "runtimed/registry.h"
#include "vmm/err.h"
#include "vmm/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPEC_MAX (4u << 20)
#define OLD_SUFFIX ".old-"

static int mkdir_p1(const char *p)
{
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return vmm_errno(-errno, "create %s", p);
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
		fprintf(stderr, "runtimed: remove %s: %s\n", path, strerror(errno));
	return 0;
}

void rt_reg_discard(const char *dir)
{
	if (dir && dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void recover_old(const char *dir, const char *entry);

/* Inside a function directory: interrupted template swaps, what a build
 * that died left (template.tmp-*), and a rebuilt template (template.new)
 * that was not moved into place. */
static void recover_function(const char *fdir)
{
	DIR *d = opendir(fdir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		char p[PATH_MAX];
		if (strstr(e->d_name, OLD_SUFFIX))
			recover_old(fdir, e->d_name);
		else if (strncmp(e->d_name, "template.tmp-", 13) == 0 && /* a build that died */
			 (size_t)snprintf(p, sizeof(p), "%s/%s", fdir, e->d_name) < sizeof(p))
			rt_reg_discard(p);
	}
	closedir(d);
	char p[PATH_MAX];
	if ((size_t)snprintf(p, sizeof(p), "%s/template.new", fdir) < sizeof(p))
		rt_reg_discard(p);
}

int rt_reg_init(struct rt_registry *r, const char *data)
{
	if ((size_t)snprintf(r->root, sizeof(r->root), "%s/functions", data) >= sizeof(r->root) ||
	    (size_t)snprintf(r->templates, sizeof(r->templates), "%s/templates", data) >=
		    sizeof(r->templates))
		return vmm_err(-ENAMETOOLONG, "data directory path too long");
	int rc = mkdir_p1(r->root);
	if (rc == 0)
		rc = mkdir_p1(r->templates);
	if (rc)
		return rc;
	/* Leftovers of deploys and deletes a crash interrupted. */
	DIR *d = opendir(r->root);
	if (!d)
		return vmm_errno(-errno, "open %s", r->root);
	struct dirent *e;
	while ((e = readdir(d))) {
		char p[PATH_MAX];
		if ((size_t)snprintf(p, sizeof(p), "%s/%s", r->root, e->d_name) >= sizeof(p))
			continue;
		if (!strncmp(e->d_name, ".staging-", 9) || !strncmp(e->d_name, ".removed-", 9))
			rt_reg_discard(p);
		else if (strstr(e->d_name, OLD_SUFFIX))
			recover_old(r->root, e->d_name);
		else if (rt_spec_name_ok(e->d_name))
			recover_function(p);
	}
	closedir(d);
	return 0;
}

int rt_reg_path(const struct rt_registry *r, const char *name, const char *leaf, char *out,
		size_t cap)
{
	int n = leaf ? snprintf(out, cap, "%s/%s/%s", r->root, name, leaf)
		     : snprintf(out, cap, "%s/%s", r->root, name);
	if (n < 0 || (size_t)n >= cap)
		return vmm_err(-ENAMETOOLONG, "path of function %s too long", name);
	return 0;
}

int rt_write_atomic(const char *dir, const char *leaf, const void *p, size_t len)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	if ((size_t)snprintf(dst, sizeof(dst), "%s/%s", dir, leaf) >= sizeof(dst) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, leaf) >= sizeof(tmp))
		return vmm_err(-ENAMETOOLONG, "%s/%s: path too long", dir, leaf);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return vmm_errno(-errno, "create %s", tmp);
	const uint8_t *b = p;
	size_t off = 0;
	int rc = 0;
	while (off < len) {
		ssize_t w = write(fd, b + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = vmm_errno(w < 0 ? -errno : -EIO, "write %s", tmp);
			break;
		}
		off += (size_t)w;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = vmm_errno(-errno, "fsync %s", tmp);
	close(fd);
	if (rc == 0 && rename(tmp, dst) < 0)
		rc = vmm_errno(-errno, "rename %s", dst);
	if (rc)
		unlink(tmp);
	return rc;
}

static int write_spec(const char *dir, const struct rt_spec *s)
{
	json_t *j = rt_spec_to_json(s);
	char *txt = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	if (!txt)
		return vmm_err(-ENOMEM, "spec of %s: out of memory", s->name);
	int rc = rt_write_atomic(dir, "spec.json", txt, strlen(txt));
	free(txt);
	return rc;
}

static int write_env(const char *dir, const struct rt_spec *s)
{
	size_t len = 0;
	for (size_t i = 0; i < s->n_env; i++)
		len += strlen(s->env_name[i]) + strlen(s->env_value[i]) + 2;
	char *buf = malloc(len ? len : 1), *p = buf;
	if (!buf)
		return vmm_err(-ENOMEM, "env of %s: out of memory", s->name);
	for (size_t i = 0; i < s->n_env; i++)
		p += sprintf(p, "%s=%s", s->env_name[i], s->env_value[i]) + 1;
	int rc = rt_write_atomic(dir, "env", buf, len);
	free(buf);
	return rc;
}

int rt_reg_stage(const struct rt_registry *r, const struct rt_spec *s, const void *code,
		 size_t code_len, char *out)
{
	if ((size_t)snprintf(out, PATH_MAX, "%s/.staging-%s-XXXXXX", r->root, s->name) >= PATH_MAX)
		return vmm_err(-ENAMETOOLONG, "staging path too long");
	if (!mkdtemp(out))
		return vmm_errno(-errno, "create %s", out);
	int rc = write_spec(out, s);
	if (rc == 0)
		rc = rt_write_atomic(out, "code.tar.gz", code, code_len);
	if (rc == 0)
		rc = write_env(out, s);
	if (rc) {
		rt_reg_discard(out);
		out[0] = 0;
	}
	return rc;
}

int rt_swap_dir(const char *src, const char *dst)
{
	if (rename(src, dst) == 0)
		return 0;
	if (errno != EEXIST && errno != ENOTEMPTY)
		return vmm_errno(-errno, "move %s to %s", src, dst);
	if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_EXCHANGE) == 0) {
		rt_reg_discard(src); /* the previous version now lives there */
		return 0;
	}
	if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return vmm_errno(-errno, "swap %s into %s", src, dst);
	/* A filesystem without RENAME_EXCHANGE (9p shares in the KVM
	 * sandbox): move the old one aside first.  Until the second rename,
	 * only DST.old-* holds it: rt_reg_init() moves it back. */
	char old[PATH_MAX];
	if ((size_t)snprintf(old, sizeof(old), "%s" OLD_SUFFIX "XXXXXX", dst) >= sizeof(old) ||
	    !mkdtemp(old))
		return vmm_errno(-errno, "aside directory for %s", dst);
	if (rename(dst, old) < 0) {
		int r = vmm_errno(-errno, "move %s aside", dst);
		rmdir(old);
		return r;
	}
	if (rename(src, dst) < 0) {
		int r = vmm_errno(-errno, "move %s to %s", src, dst);
		if (rename(old, dst) < 0)
			fprintf(stderr, "runtimed: %s is left at %s: %s\n", dst, old, strerror(errno));
		return r;
	}
	rt_reg_discard(old);
	return 0;
}

/* A DST.old-* directory with no DST next to it is what an interrupted
 * rt_swap_dir() left: put it back; otherwise remove it. */
static void recover_old(const char *dir, const char *entry)
{
	const char *mark = strstr(entry, OLD_SUFFIX);
	char p[PATH_MAX], dst[PATH_MAX];
	if (!mark || (size_t)snprintf(p, sizeof(p), "%s/%s", dir, entry) >= sizeof(p) ||
	    (size_t)snprintf(dst, sizeof(dst), "%s/%.*s", dir, (int)(mark - entry), entry) >= sizeof(dst))
		return;
	if (access(dst, F_OK) != 0 && rename(p, dst) == 0)
		return;
	rt_reg_discard(p);
}

int rt_reg_commit(const struct rt_registry *r, const char *name, const char *staging)
{
	char dst[PATH_MAX];
	int rc = rt_reg_path(r, name, NULL, dst, sizeof(dst));
	return rc ? rc : rt_swap_dir(staging, dst);
}

int rt_reg_save_spec(const struct rt_registry *r, const struct rt_spec *s)
{
	char dir[PATH_MAX];
	int rc = rt_reg_path(r, s->name, NULL, dir, sizeof(dir));
	return rc ? rc : write_spec(dir, s);
}

int rt_reg_remove(const struct rt_registry *r, const char *name)
{
	char src[PATH_MAX], dst[PATH_MAX];
	int rc = rt_reg_path(r, name, NULL, src, sizeof(src));
	if (rc)
		return rc;
	if ((size_t)snprintf(dst, sizeof(dst), "%s/.removed-%s-XXXXXX", r->root, name) >= sizeof(dst))
		return vmm_err(-ENAMETOOLONG, "path too long");
	if (!mkdtemp(dst))
		return vmm_errno(-errno, "create %s", dst);
	/* Exchange with an empty directory: the name is gone at once. */
	if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_EXCHANGE) < 0) {
		rc = vmm_errno(-errno, "remove %s", name);
		rmdir(dst);
		return rc;
	}
	rmdir(src);
	rt_reg_discard(dst);
	return 0;
}

static int load_one(const struct rt_registry *r, const char *name, struct rt_spec *s)
{
	char p[PATH_MAX], err[160];
	uint8_t *buf;
	size_t len;
	if (rt_reg_path(r, name, "spec.json", p, sizeof(p)))
		return -ENAMETOOLONG;
	int rc = vmm_read_file("spec", p, SPEC_MAX, &buf, &len);
	if (rc)
		return rc;
	json_error_t je;
	json_t *j = json_loadb((const char *)buf, len, 0, &je);
	free(buf);
	if (!j)
		return vmm_err(-EINVAL, "%s: %s", p, je.text);
	rc = rt_spec_from_json(s, j, err, sizeof(err));
	json_decref(j);
	if (rc)
		return vmm_err(rc, "%s: %s", p, err);
	if (strcmp(s->name, name) != 0) {
		rt_spec_free(s);
		return vmm_err(-EINVAL, "%s names another function (%s)", p, s->name);
	}
	if (rt_reg_path(r, name, "code.tar.gz", p, sizeof(p)) || access(p, R_OK) != 0) {
		rt_spec_free(s);
		return vmm_err(-ENOENT, "function %s has no code.tar.gz", name);
	}
	return 0;
}

int rt_reg_load(const struct rt_registry *r, void (*fn)(void *arg, struct rt_spec *s), void *arg)
{
	DIR *d = opendir(r->root);
	if (!d)
		return vmm_errno(-errno, "open %s", r->root);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!rt_spec_name_ok(e->d_name))
			continue;
		struct rt_spec s;
		if (load_one(r, e->d_name, &s)) {
			fprintf(stderr, "runtimed: skipping function %s: %s\n", e->d_name, vmm_strerror());
			continue;
		}
		fn(arg, &s);
		n++;
	}
	closedir(d);
	return n;
}
