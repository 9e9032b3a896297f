/* pack.c — directory walk feeding tar.c, compressed with zlib's gzip. */
#include "cli/pack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cli/tar.h"
#include "vmm/err.h"

struct pack {
	z_stream z;
	struct cli_buf *out;
	struct cli_tar tar;
	struct cli_pack_stats *st;
	unsigned entries;
};

static int gz_run(struct pack *p, int flush)
{
	for (;;) {
		int r = cli_buf_reserve(p->out, 65536);
		if (r < 0)
			return vmm_errno(r, "package");
		p->z.next_out = (Bytef *)p->out->data + p->out->len;
		p->z.avail_out = 65536;
		int zr = deflate(&p->z, flush);
		p->out->len += 65536 - p->z.avail_out;
		p->out->data[p->out->len] = '\0';
		if (zr == Z_STREAM_END)
			return 0;
		if (zr != Z_OK && zr != Z_BUF_ERROR)
			return vmm_err(-EIO, "gzip: deflate failed (%d)", zr);
		if (flush == Z_NO_FLUSH && p->z.avail_in == 0)
			return 0;
	}
}

static int gz_write(void *arg, const void *data, size_t n)
{
	struct pack *p = arg;
	while (n > 0) {
		uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
		p->z.next_in = (Bytef *)(uintptr_t)data;
		p->z.avail_in = chunk;
		int r = gz_run(p, Z_NO_FLUSH);
		if (r < 0)
			return r;
		data = (const char *)data + chunk;
		n -= chunk;
	}
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The guest agent's rule for symlinks (guest-agent/runtime_pkg.h): relative,
 * non-empty, no ".." component, so a link only reaches into its own
 * directory's subtree and no chain of links can leave the package.  Checked
 * here too so the author hears of it before uploading. */
static int link_ok(const char *target)
{
	if (target[0] == '/' || target[0] == '\0')
		return 0;
	for (const char *s = target; *s;) {
		size_t n = strcspn(s, "/");
		if (n == 2 && s[0] == '.' && s[1] == '.')
			return 0;
		s += n;
		while (*s == '/')
			s++;
	}
	return 1;
}

static int pack_dir(struct pack *p, int dfd, const char *rel, const char *shown, int depth);

static int pack_entry(struct pack *p, int dfd, const char *rel, const char *name,
		      const char *shown, int depth)
{
	char path[4096], show[4096];
	int n = snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "", name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return vmm_err(-ENAMETOOLONG, "%s/%s: path too long", shown, name);
	snprintf(show, sizeof(show), "%s/%s", shown, name);
	if (++p->entries > CLI_PACK_MAX_ENTRIES)
		return vmm_err(-EFBIG, "%s: more than %d entries", shown, CLI_PACK_MAX_ENTRIES);

	struct stat sb;
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return vmm_errno(-errno, "%s", show);
	if (S_ISDIR(sb.st_mode)) {
		if (depth + 1 > CLI_PACK_MAX_DEPTH)
			return vmm_err(-ELOOP, "%s: nested deeper than %d directories", show,
				       CLI_PACK_MAX_DEPTH);
		int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return vmm_errno(-errno, "%s", show);
		int r = cli_tar_dir(&p->tar, path);
		if (r == 0) {
			p->st->dirs++;
			r = pack_dir(p, sub, path, show, depth + 1); /* takes sub */
		} else {
			close(sub);
		}
		return r;
	}
	if (S_ISLNK(sb.st_mode)) {
		char target[4096];
		ssize_t len = readlinkat(dfd, name, target, sizeof(target) - 1);
		if (len < 0)
			return vmm_errno(-errno, "%s", show);
		target[len] = '\0';
		if (!link_ok(target))
			return vmm_err(-EXDEV, "%s: symlink to %s leaves its directory (only "
				       "relative links without '..' are allowed; copy the file in "
				       "instead)", show, target);
		p->st->symlinks++;
		return cli_tar_symlink(&p->tar, path, target);
	}
	if (!S_ISREG(sb.st_mode))
		return vmm_err(-EINVAL, "%s: not a regular file, directory or symlink", show);

	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return vmm_errno(-errno, "%s", show);
	int r = 0;
	if (fstat(fd, &sb) < 0)
		r = vmm_errno(-errno, "%s", show);
	else if (!S_ISREG(sb.st_mode))
		r = vmm_err(-EINVAL, "%s: changed while being packed", show);
	else if ((uint64_t)sb.st_size > CLI_PACK_MAX_INPUT - p->st->bytes_in)
		r = vmm_err(-EFBIG, "%s: the package would hold more than %llu MiB of files",
			    show, CLI_PACK_MAX_INPUT >> 20);
	if (r == 0)
		r = cli_tar_file(&p->tar, path, sb.st_mode, fd, (uint64_t)sb.st_size);
	if (r == 0) {
		p->st->files++;
		p->st->bytes_in += (uint64_t)sb.st_size;
	}
	close(fd);
	return r;
}

/* Packs every entry of the open directory `dfd` (closed here). */
static int pack_dir(struct pack *p, int dfd, const char *rel, const char *shown, int depth)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		int r = vmm_errno(-errno, "%s", shown);
		close(dfd);
		return r;
	}
	char **names = NULL;
	size_t nnames = 0, cap = 0;
	int r = 0;
	struct dirent *de;
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				r = vmm_errno(-errno, "%s: readdir", shown);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (nnames == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			char **nn = realloc(names, ncap * sizeof(*names));
			if (!nn) {
				r = vmm_errno(-ENOMEM, "%s", shown);
				break;
			}
			names = nn;
			cap = ncap;
		}
		names[nnames] = strdup(de->d_name);
		if (!names[nnames]) {
			r = vmm_errno(-ENOMEM, "%s", shown);
			break;
		}
		nnames++;
		if (nnames > CLI_PACK_MAX_ENTRIES) {
			r = vmm_err(-EFBIG, "%s: more than %d entries", shown, CLI_PACK_MAX_ENTRIES);
			break;
		}
	}
	if (r == 0 && nnames)
		qsort(names, nnames, sizeof(*names), name_cmp);
	for (size_t i = 0; r == 0 && i < nnames; i++)
		r = pack_entry(p, dirfd(d), rel, names[i], shown, depth);
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	closedir(d); /* closes dfd */
	return r;
}

static int pack_directory(int dfd, const char *path, struct cli_buf *out,
			  struct cli_pack_stats *st)
{
	struct pack p = { .out = out, .st = st };
	p.tar = (struct cli_tar){ .write = gz_write, .arg = &p };
	/* windowBits 15 + 16: a gzip wrapper with mtime 0 and no file name. */
	if (deflateInit2(&p.z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		close(dfd);
		return vmm_err(-ENOMEM, "gzip: deflateInit2 failed");
	}
	size_t start = out->len;
	char shown[4096]; /* DIR as given, without trailing slashes, for messages */
	snprintf(shown, sizeof(shown), "%s", path);
	for (size_t n = strlen(shown); n > 1 && shown[n - 1] == '/'; n--)
		shown[n - 1] = '\0';
	int r = pack_dir(&p, dfd, "", shown, 0);
	if (r == 0 && st->files == 0)
		r = vmm_err(-ENODATA, "%s: no files to deploy", shown);
	if (r == 0)
		r = cli_tar_end(&p.tar);
	if (r == 0)
		r = gz_run(&p, Z_FINISH);
	deflateEnd(&p.z);
	if (r == 0)
		st->bytes_out = out->len - start;
	return r;
}

static int load_prebuilt(int fd, const char *path, struct cli_buf *out,
			 struct cli_pack_stats *st, uint64_t size)
{
	if (size > CLI_PACK_MAX_INPUT)
		return vmm_err(-EFBIG, "%s: package larger than %llu MiB", path,
			       CLI_PACK_MAX_INPUT >> 20);
	int r = cli_buf_reserve(out, (size_t)size);
	if (r < 0)
		return vmm_errno(r, "%s", path);
	size_t start = out->len;
	for (;;) {
		if (out->len - start > size)
			return vmm_err(-EIO, "%s: grew while being read", path);
		r = cli_buf_reserve(out, 65536);
		if (r < 0)
			return vmm_errno(r, "%s", path);
		ssize_t n = read(fd, out->data + out->len, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vmm_errno(-errno, "%s: read", path);
		if (n == 0)
			break;
		out->len += (size_t)n;
		out->data[out->len] = '\0';
	}
	size_t got = out->len - start;
	if (got < 2 || (uint8_t)out->data[start] != 0x1f || (uint8_t)out->data[start + 1] != 0x8b)
		return vmm_err(-EINVAL, "%s: not a directory or a .tar.gz package", path);
	st->prebuilt = 1;
	st->bytes_out = got;
	return 0;
}

int cli_pack_path(const char *path, struct cli_buf *out, struct cli_pack_stats *st)
{
	*st = (struct cli_pack_stats){0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vmm_errno(-errno, "%s", path);
	struct stat sb;
	if (fstat(fd, &sb) < 0) {
		int r = vmm_errno(-errno, "%s", path);
		close(fd);
		return r;
	}
	if (S_ISDIR(sb.st_mode))
		return pack_directory(fd, path, out, st); /* takes fd */
	int r;
	if (S_ISREG(sb.st_mode))
		r = load_prebuilt(fd, path, out, st, (uint64_t)sb.st_size);
	else
		r = vmm_err(-EINVAL, "%s: not a directory or a .tar.gz package", path);
	close(fd);
	return r;
}
