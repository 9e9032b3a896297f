/* tar.c — ustar records (header, data, padding) written through a sink. */
#include "cli/tar.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm/err.h"

#define TAR_BLOCK 512
#define TAR_MAX_SIZE 077777777777ull /* 11 octal digits */

struct ustar_hdr {
	char name[100];
	char mode[8];
	char uid[8];
	char gid[8];
	char size[12];
	char mtime[12];
	char chksum[8];
	char typeflag;
	char linkname[100];
	char magic[6];
	char version[2];
	char uname[32];
	char gname[32];
	char devmajor[8];
	char devminor[8];
	char prefix[155];
	char pad[12];
};
_Static_assert(sizeof(struct ustar_hdr) == TAR_BLOCK, "ustar header is one block");

static int tar_put(struct cli_tar *t, const void *p, size_t n)
{
	int r = t->write(t->arg, p, n);
	if (r < 0)
		return r;
	t->bytes += n;
	return 0;
}

/* Split `name` into ustar's prefix (155) and name (100) at a slash. */
static int tar_set_name(struct ustar_hdr *h, const char *name)
{
	size_t n = strlen(name);
	if (n == 0)
		return vmm_err(-EINVAL, "tar: empty entry name");
	if (n <= sizeof(h->name)) {
		memcpy(h->name, name, n);
		return 0;
	}
	/* The last slash whose tail fits in name[] and whose head fits in prefix[]. */
	for (size_t i = n; i-- > 0;) {
		if (name[i] != '/')
			continue;
		size_t tail = n - i - 1;
		if (tail > sizeof(h->name))
			break;
		if (i <= sizeof(h->prefix) && tail > 0) {
			memcpy(h->prefix, name, i);
			memcpy(h->name, name + i + 1, tail);
			return 0;
		}
	}
	return vmm_err(-ENAMETOOLONG, "%s: path too long for a ustar archive", name);
}

static int tar_header(struct cli_tar *t, const char *name, char type, mode_t mode,
		      uint64_t size, const char *link)
{
	struct ustar_hdr h;
	memset(&h, 0, sizeof(h));
	int r = tar_set_name(&h, name);
	if (r < 0)
		return r;
	if (size > TAR_MAX_SIZE)
		return vmm_err(-EFBIG, "%s: file too large for a ustar archive", name);
	if (link) {
		size_t ln = strlen(link);
		if (ln > sizeof(h.linkname))
			return vmm_err(-ENAMETOOLONG, "%s: symlink target longer than %zu bytes",
				       name, sizeof(h.linkname));
		memcpy(h.linkname, link, ln);
	}
	snprintf(h.mode, sizeof(h.mode), "%07o", (unsigned)mode);
	snprintf(h.uid, sizeof(h.uid), "%07o", 0u);
	snprintf(h.gid, sizeof(h.gid), "%07o", 0u);
	snprintf(h.size, sizeof(h.size), "%011llo", (unsigned long long)size);
	snprintf(h.mtime, sizeof(h.mtime), "%011o", 0u);
	h.typeflag = type;
	memcpy(h.magic, "ustar", 6); /* with its NUL */
	memcpy(h.version, "00", 2);
	snprintf(h.devmajor, sizeof(h.devmajor), "%07o", 0u);
	snprintf(h.devminor, sizeof(h.devminor), "%07o", 0u);

	/* The checksum is computed with its own field read as spaces. */
	memset(h.chksum, ' ', sizeof(h.chksum));
	unsigned sum = 0;
	const unsigned char *p = (const unsigned char *)&h;
	for (size_t i = 0; i < sizeof(h); i++)
		sum += p[i];
	snprintf(h.chksum, sizeof(h.chksum), "%06o", sum); /* six digits, NUL, space */
	h.chksum[7] = ' ';
	return tar_put(t, &h, sizeof(h));
}

static int tar_pad(struct cli_tar *t, uint64_t size)
{
	static const char zero[TAR_BLOCK];
	size_t rem = (size_t)(size % TAR_BLOCK);
	return rem ? tar_put(t, zero, TAR_BLOCK - rem) : 0;
}

int cli_tar_file(struct cli_tar *t, const char *name, mode_t mode, int fd, uint64_t size)
{
	mode_t m = (mode & 0111) ? 0755 : 0644;
	int r = tar_header(t, name, '0', m, size, NULL);
	if (r < 0)
		return r;
	char buf[65536];
	uint64_t left = size;
	while (left > 0) {
		size_t want = left < sizeof(buf) ? (size_t)left : sizeof(buf);
		ssize_t n = read(fd, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vmm_errno(-errno, "%s: read", name);
		if (n == 0)
			return vmm_err(-EIO, "%s: file shrank while being packed", name);
		r = tar_put(t, buf, (size_t)n);
		if (r < 0)
			return r;
		left -= (uint64_t)n;
	}
	return tar_pad(t, size);
}

int cli_tar_dir(struct cli_tar *t, const char *name)
{
	char dname[300];
	int n = snprintf(dname, sizeof(dname), "%s/", name);
	if (n < 0 || (size_t)n >= sizeof(dname))
		return vmm_err(-ENAMETOOLONG, "%s: path too long for a ustar archive", name);
	return tar_header(t, dname, '5', 0755, 0, NULL);
}

int cli_tar_symlink(struct cli_tar *t, const char *name, const char *target)
{
	return tar_header(t, name, '2', 0777, 0, target);
}

int cli_tar_end(struct cli_tar *t)
{
	static const char zero[2 * TAR_BLOCK];
	return tar_put(t, zero, sizeof(zero));
}
