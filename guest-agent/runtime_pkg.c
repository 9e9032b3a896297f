/* runtime_pkg.c — the function package reader (runtime_pkg.h): zlib
 * inflates the gzip stream in 64 KiB chunks, and a tar state machine turns
 * the chunks into entries (filesystem side: runtime_pkg_fs.c). */
#include "guest-agent/runtime_pkg.h"
#include "guest-agent/runtime_pkg_fs.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define BLOCK        512u
#define CHUNK        (64u << 10)
#define META_MAX     (64u << 10)     /* a long name or pax header, bytes */
#define AFTER_END    (1u << 20)      /* padding tolerated after the end marker */
#define SIZE_MAX_TAR (1ull << 40)

enum tar_mode { T_HDR, T_DATA, T_META, T_SKIP, T_END };

struct tar {
	int root;
	const struct agent_pkg_limits *lim;
	struct agent_pkg_stats st;
	char *err;
	size_t errlen;
	enum tar_mode mode;
	uint8_t hdr[BLOCK];
	size_t hdr_have;
	uint64_t remain;             /* bytes left of the current entry's data */
	uint64_t pad;                /* then this many bytes of block padding */
	uint64_t after_end;          /* bytes seen after the end marker */
	uint32_t entries;
	int out_fd;                  /* the file being written, or -1 */
	char meta_type;              /* 'L', 'K' or 'x' while in T_META */
	char *meta;                  /* its bytes (meta_have of remain+have) */
	size_t meta_have;
	char *long_name, *long_link; /* pending for the next entry */
	int have_size;
	uint64_t pax_size;
	char path[PKG_PATH_MAX];
};

static int fail(struct tar *t, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct tar *t, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->err, t->errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* An octal numeric field: spaces, digits, then NUL or space.  Base-256
 * (GNU, for huge values) is refused: nothing that big fits the budget. */
static int parse_octal(const uint8_t *f, size_t n, uint64_t *out)
{
	size_t i = 0;
	uint64_t v = 0;
	if (n && (f[0] & 0x80))
		return -1;
	while (i < n && f[i] == ' ')
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v > (UINT64_MAX >> 3))
			return -1;
		v = (v << 3) | (uint64_t)(f[i] - '0');
	}
	if (i < n && f[i] != '\0' && f[i] != ' ')
		return -1;
	*out = v;
	return 0;
}

static int checksum_ok(const uint8_t *h)
{
	uint64_t want;
	if (parse_octal(h + 148, 8, &want) < 0)
		return 0;
	uint64_t u = 0;
	int64_t s = 0;
	for (size_t i = 0; i < BLOCK; i++) {
		uint8_t c = (i >= 148 && i < 156) ? ' ' : h[i];
		u += c;
		s += (int8_t)c;
	}
	return u == want || (uint64_t)s == want;
}

static int all_zero(const uint8_t *h)
{
	for (size_t i = 0; i < BLOCK; i++)
		if (h[i])
			return 0;
	return 1;
}

/* A NUL-terminated copy of a fixed-width header field. */
static void field(char *dst, const uint8_t *src, size_t n)
{
	size_t len = strnlen((const char *)src, n);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static void clear_pending(struct tar *t)
{
	free(t->long_name);
	free(t->long_link);
	t->long_name = t->long_link = NULL;
	t->have_size = 0;
}

/* Parse pax records "LEN key=value\n" for path, linkpath and size. */
static int parse_pax(struct tar *t, const char *p, size_t n)
{
	size_t off = 0;
	while (off < n) {
		size_t len = 0, i = off;
		while (i < n && p[i] >= '0' && p[i] <= '9' && len < META_MAX)
			len = len * 10 + (size_t)(p[i++] - '0');
		/* "LEN SP key=value NL": LEN counts the whole record, so the key
		 * starts before the record's last byte. */
		if (i == off || i >= n || p[i] != ' ' || len < 5 || len > n - off ||
		    i + 2 > off + len || p[off + len - 1] != '\n')
			return fail(t, -EBADMSG, "package: malformed pax header");
		const char *kv = p + i + 1, *end = p + off + len - 1;
		const char *eq = memchr(kv, '=', (size_t)(end - kv));
		if (!eq)
			return fail(t, -EBADMSG, "package: malformed pax record");
		size_t klen = (size_t)(eq - kv), vlen = (size_t)(end - eq - 1);
		char **slot = NULL;
		if (klen == 4 && memcmp(kv, "path", 4) == 0)
			slot = &t->long_name;
		else if (klen == 8 && memcmp(kv, "linkpath", 8) == 0)
			slot = &t->long_link;
		if (slot) {
			free(*slot);
			*slot = strndup(eq + 1, vlen);
			if (!*slot)
				return fail(t, -ENOMEM, "package: out of memory");
		} else if (klen == 4 && memcmp(kv, "size", 4) == 0) {
			uint64_t v = 0;
			for (const char *c = eq + 1; c < end; c++) {
				if (*c < '0' || *c > '9' || v > SIZE_MAX_TAR)
					return fail(t, -EBADMSG, "package: bad pax size");
				v = v * 10 + (uint64_t)(*c - '0');
			}
			t->pax_size = v;
			t->have_size = 1;
		}
		off += len;
	}
	return 0;
}

static int meta_done(struct tar *t)
{
	size_t n = t->meta_have;
	int rc = 0;
	t->meta[n] = '\0';
	if (t->meta_type == 'x') {
		rc = parse_pax(t, t->meta, n);
	} else {
		char **slot = t->meta_type == 'L' ? &t->long_name : &t->long_link;
		free(*slot);
		*slot = strndup(t->meta, n);   /* up to the first NUL */
		if (!*slot)
			rc = fail(t, -ENOMEM, "package: out of memory");
	}
	free(t->meta);
	t->meta = NULL;
	return rc;
}

/* After an entry's data: skip its padding, then the next header. */
static void next_entry(struct tar *t)
{
	t->mode = t->pad ? T_SKIP : T_HDR;
	t->remain = t->pad;
	t->pad = 0;
}

static int start_data(struct tar *t, uint64_t size, enum tar_mode mode)
{
	t->remain = size;
	t->pad = (BLOCK - size % BLOCK) % BLOCK;
	t->mode = mode;
	if (size == 0) {          /* no data: the next header follows */
		int rc = mode == T_META ? meta_done(t) : 0;
		if (t->out_fd >= 0) {
			close(t->out_fd);
			t->out_fd = -1;
		}
		next_entry(t);
		return rc;
	}
	return 0;
}

static int entry_error(struct tar *t, int rc, const char *what)
{
	if (rc == -EPERM)
		return fail(t, rc, "package: %s %s: refused (through a symlink, over a directory, "
			    "or a duplicate)", what, t->path);
	return fail(t, rc, "package: %s %s: %s", what, t->path, strerror(-rc));
}

/* One complete header block. */
static int header(struct tar *t)
{
	const uint8_t *h = t->hdr;
	if (all_zero(h)) {          /* end of archive */
		t->mode = T_END;
		return 0;
	}
	if (!checksum_ok(h))
		return fail(t, -EBADMSG, "package: bad tar header checksum (not a tar archive?)");
	uint64_t size;
	if (parse_octal(h + 124, 12, &size) < 0 || size > SIZE_MAX_TAR)
		return fail(t, -EBADMSG, "package: bad size field in a tar header");
	char type = (char)h[156];

	if (type == 'L' || type == 'K' || type == 'x' || type == 'g') {
		if (size > META_MAX)
			return fail(t, -EBADMSG, "package: long name or pax header over 64 KiB");
		if (type == 'g') {
			t->have_size = 0;
			return start_data(t, size, T_SKIP);
		}
		t->meta = malloc(size + 1);
		if (!t->meta)
			return fail(t, -ENOMEM, "package: out of memory");
		t->meta_have = 0;
		t->meta_type = type;
		return start_data(t, size, T_META);
	}

	if (t->have_size)          /* a pax size overrides the header's */
		size = t->pax_size;
	char name[256 + 156], link[101], base[101], prefix[156];
	field(base, h, 100);
	field(prefix, h + 345, 155);
	field(link, h + 157, 100);
	/* The prefix field is POSIX ustar's ("ustar\0"); GNU keeps times there. */
	if (memcmp(h + 257, "ustar\0", 6) == 0 && prefix[0])
		snprintf(name, sizeof name, "%s/%s", prefix, base);
	else
		snprintf(name, sizeof name, "%s", base);
	/* An empty long name or pax path counts as none. */
	const char *nm = t->long_name && t->long_name[0] ? t->long_name : name;
	const char *lk = t->long_link && t->long_link[0] ? t->long_link : link;
	const char *why;
	int rc = pkg_norm_path(nm, t->path, &why);
	if (rc < 0) {
		rc = fail(t, rc, "package: entry %.200s: %s", nm, why);
		clear_pending(t);
		return rc;
	}
	int is_root = rc == 1;
	if (++t->entries > t->lim->max_entries) {
		clear_pending(t);
		return fail(t, -E2BIG, "package: more than %u entries", t->lim->max_entries);
	}

	rc = 0;
	switch (type) {
	case '0': case '\0': case '7': {
		if (is_root)
			return fail(t, -EPERM, "package: a file entry without a name");
		if (size > t->lim->max_bytes - t->st.bytes) {
			clear_pending(t);
			return fail(t, -EFBIG, "package: unpacked files exceed the memory budget of "
				    "%llu bytes", (unsigned long long)t->lim->max_bytes);
		}
		uint64_t m = 0;
		mode_t mode = parse_octal(h + 100, 8, &m) == 0 && (m & 0111) ? 0755 : 0644;
		int fd = pkg_create_file(t->root, t->path, mode);
		if (fd < 0) {
			rc = entry_error(t, fd, "file");
			break;
		}
		t->out_fd = fd;
		t->st.files++;
		t->st.bytes += size;
		clear_pending(t);
		return start_data(t, size, T_DATA);
	}
	case '5':
		if (!is_root) {
			rc = pkg_make_dir(t->root, t->path);
			if (rc < 0)
				rc = entry_error(t, rc, "directory");
			t->st.dirs++;
		}
		break;
	case '2':
		if (is_root)
			return fail(t, -EPERM, "package: a symlink without a name");
		if (pkg_check_link_target(lk) < 0) {
			rc = fail(t, -EPERM, "package: symlink %s -> %.200s leaves its directory "
				  "(absolute or '..')", t->path, lk);
			break;
		}
		rc = pkg_make_symlink(t->root, t->path, lk);
		if (rc < 0)
			rc = entry_error(t, rc, "symlink");
		t->st.links++;
		break;
	case '1': {
		char target[PKG_PATH_MAX];
		if (is_root || pkg_norm_path(lk, target, &why) != 0) {
			rc = fail(t, -EPERM, "package: hard link %s -> %.200s leaves the package",
				  t->path, lk);
			break;
		}
		rc = pkg_make_hardlink(t->root, t->path, target);
		if (rc < 0)
			rc = fail(t, rc, "package: hard link %s -> %s: %s", t->path, target,
				  rc == -EPERM ? "not an earlier file of the package" : strerror(-rc));
		t->st.links++;
		break;
	}
	default:
		rc = fail(t, -EPERM, "package: entry %s has unsupported type '%c' (devices, FIFOs "
			  "and sparse files are refused)", t->path, type >= 32 && type < 127 ? type : '?');
		break;
	}
	clear_pending(t);
	if (rc < 0)
		return rc;
	/* Non-file entries carry no data, but skip any they claim. */
	if (size > t->lim->max_bytes)
		return fail(t, -EFBIG, "package: entry %s claims %llu bytes", t->path,
			    (unsigned long long)size);
	return start_data(t, size, T_SKIP);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Consume n bytes of the tar stream. */
static int tar_feed(struct tar *t, const uint8_t *p, size_t n)
{
	while (n) {
		if (t->mode == T_END) {
			t->after_end += n;
			if (t->after_end > AFTER_END)
				return fail(t, -EBADMSG, "package: over 1 MiB of data after the end "
					    "of the archive");
			return 0;
		}
		if (t->mode == T_HDR) {
			size_t k = BLOCK - t->hdr_have < n ? BLOCK - t->hdr_have : n;
			memcpy(t->hdr + t->hdr_have, p, k);
			t->hdr_have += k;
			p += k;
			n -= k;
			if (t->hdr_have == BLOCK) {
				t->hdr_have = 0;
				int rc = header(t);
				if (rc < 0)
					return rc;
			}
			continue;
		}
		size_t k = t->remain < n ? (size_t)t->remain : n;
		if (t->mode == T_DATA) {
			int rc = write_all(t->out_fd, p, k);
			if (rc < 0)
				return fail(t, rc, "package: writing %s: %s", t->path, strerror(-rc));
		} else if (t->mode == T_META) {
			memcpy(t->meta + t->meta_have, p, k);
			t->meta_have += k;
		}
		p += k;
		n -= k;
		t->remain -= k;
		if (t->remain == 0) {
			enum tar_mode was = t->mode;
			if (was == T_DATA) {
				close(t->out_fd);
				t->out_fd = -1;
			}
			if (was == T_META) {
				int rc = meta_done(t);
				if (rc < 0)
					return rc;
			}
			if (was == T_SKIP)
				t->mode = T_HDR;
			else
				next_entry(t);
		}
	}
	return 0;
}

int agent_pkg_unpack(const uint8_t *buf, size_t len, int dirfd, const struct agent_pkg_limits *lim,
		     struct agent_pkg_stats *stats, char *err, size_t errlen)
{
	struct tar t = { .root = dirfd, .lim = lim, .err = err, .errlen = errlen, .out_fd = -1 };
	if (len < 18 || buf[0] != 0x1f || buf[1] != 0x8b)
		return fail(&t, -EBADMSG, "package: not gzip data (want a .tar.gz)");
	if (len > UINT_MAX)
		return fail(&t, -EFBIG, "package: over 4 GiB");
	z_stream zs;
	memset(&zs, 0, sizeof zs);
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return fail(&t, -ENOMEM, "package: zlib: out of memory");
	uint8_t *out = malloc(CHUNK);
	int rc = out ? 0 : fail(&t, -ENOMEM, "package: out of memory");
	zs.next_in = (Bytef *)buf;
	zs.avail_in = (uInt)len;
	while (rc == 0) {
		zs.next_out = out;
		zs.avail_out = CHUNK;
		int z = inflate(&zs, Z_NO_FLUSH);
		size_t got = CHUNK - zs.avail_out;
		if (got)
			rc = tar_feed(&t, out, got);
		if (rc < 0)
			break;
		if (z == Z_STREAM_END)
			break;
		if (z == Z_OK)
			continue;
		if (z == Z_BUF_ERROR && zs.avail_in == 0)
			rc = fail(&t, -EBADMSG, "package: truncated gzip stream");
		else if (z == Z_MEM_ERROR)
			rc = fail(&t, -ENOMEM, "package: zlib: out of memory");
		else
			rc = fail(&t, -EBADMSG, "package: corrupt gzip data (%s)",
				  zs.msg ? zs.msg : "inflate failed");
	}
	/* Without the end marker an archive may stop only between entries. */
	if (rc == 0 && t.mode != T_END && (t.mode != T_HDR || t.hdr_have != 0))
		rc = fail(&t, -EBADMSG, "package: truncated tar archive");
	inflateEnd(&zs);
	free(out);
	if (t.out_fd >= 0)
		close(t.out_fd);
	free(t.meta);
	clear_pending(&t);
	if (rc == 0 && stats)
		*stats = t.st;
	return rc;
}
