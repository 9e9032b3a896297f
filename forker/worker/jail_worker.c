/* jail_worker.c — what each uf-worker mode puts in its jail (jail.h):
 * serve gets /dev/kvm and its template directory (new files allowed for
 * the working set, the snapshot files locked read-only); build gets
 * /dev/kvm, the boot artifacts read-only and the directories it writes
 * templates into read-write. */
#include "forker/worker/jail.h"
#include "forker/worker/jail_worker.h"
#include "vmm/err.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static struct jail_spec spec(int fd)
{
	return (struct jail_spec){.kvm = true, .keep_fd = fd, .seccomp = jail_seccomp_mode()};
}

int worker_jail_serve(const char **dir, int fd)
{
	static char tmpl[PATH_MAX];
	if (!jail_wanted)
		return 0;
	struct jail_spec js = spec(fd);
	int r = jail_abspath(*dir, tmpl, sizeof(tmpl));
	if (!r)
		r = jail_add(&js, tmpl, JAIL_RW_NEW);
	if (!r)
		r = jail_enter(&js);
	if (r)
		return r;
	*dir = tmpl;
	return 0;
}

/* The directory `path` is in (made absolute). */
static int parent_dir(const char *path, char *out, size_t n)
{
	int r = jail_abspath(path, out, n);
	char *slash = r ? NULL : strrchr(out, '/');
	if (r)
		return r;
	if (slash == out)
		return vmm_err(-EINVAL, "jail: %s: no directory above it", path);
	*slash = 0;
	return 0;
}

int worker_jail_build(const char **paths_ro[], size_t n_ro, const char **templates,
		      const char **out, int fd)
{
	static char ro[JAIL_MAX_MOUNTS - 3][PATH_MAX], tdir[PATH_MAX], odir[PATH_MAX],
		oparent[PATH_MAX];
	if (!jail_wanted)
		return 0;
	if (n_ro > JAIL_MAX_MOUNTS - 3)
		return vmm_err(-E2BIG, "jail: too many files");
	struct jail_spec js = spec(fd);
	int r = 0;
	for (size_t i = 0; !r && i < n_ro; i++)
		if (*paths_ro[i] && !(r = jail_abspath(*paths_ro[i], ro[i], PATH_MAX)))
			r = jail_add(&js, ro[i], JAIL_RO);
	if (!r)
		r = jail_abspath(*templates, tdir, sizeof(tdir));
	if (!r)
		r = jail_add(&js, tdir, JAIL_RW);
	if (!r)
		r = jail_abspath(*out, odir, sizeof(odir));
	/* The output appears by rename of a sibling temporary directory. */
	if (!r)
		r = parent_dir(odir, oparent, sizeof(oparent));
	size_t tl = strlen(tdir);
	if (!r && (strncmp(oparent, tdir, tl) != 0 || (oparent[tl] && oparent[tl] != '/')))
		r = jail_add(&js, oparent, JAIL_RW);
	if (!r)
		r = jail_enter(&js);
	if (r)
		return r;
	for (size_t i = 0; i < n_ro; i++)
		if (*paths_ro[i])
			*paths_ro[i] = ro[i];
	*templates = tdir;
	*out = odir;
	return 0;
}
