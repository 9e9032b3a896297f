/* test_runtime_pkg.c — the package reader (guest-agent/runtime_pkg.h) on
 * archives written here: what a good package unpacks to, and every hostile
 * or broken one refused with its reason and nothing written outside. */
#include "tests/unit/test_runtime.h"
#include "tests/unit/ut.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "guest-agent/runtime_pkg.h"

static char top[64], root[96];
static int rootfd = -1;

/* /tmp/uf-pkg-test.XXXXXX/root is where packages go; its parent holds
 * "outside", which no package may touch. */
static void setup(void)
{
	snprintf(top, sizeof top, "/tmp/uf-pkg-test.XXXXXX");
	UT_ASSERT(mkdtemp(top));
	snprintf(root, sizeof root, "%s/root", top);
	UT_EQ(mkdir(root, 0755), 0);
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	UT_ASSERT(rootfd >= 0);
}

static void teardown(void)
{
	int t = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	UT_ASSERT(t >= 0);
	UT_EQ(agent_pkg_clear(t), 0);
	close(t);
	close(rootfd);
	UT_EQ(rmdir(top), 0);
}

static const struct agent_pkg_limits lim = { .max_bytes = 1u << 20, .max_entries = 100 };

/* Unpack entries; returns the reader's result, message in err. */
static int unpack(const struct rt_entry *e, size_t n, int no_end, char *err, size_t errlen,
		  struct agent_pkg_stats *st)
{
	size_t len;
	uint8_t *gz = rt_targz(e, n, no_end, &len);
	int rc = agent_pkg_unpack(gz, len, rootfd, &lim, st, err, errlen);
	free(gz);
	return rc;
}

static void expect_refused(const struct rt_entry *e, size_t n, int want, const char *msg)
{
	char err[512] = "";
	int rc = unpack(e, n, 0, err, sizeof err, NULL);
	if (rc != want || !strstr(err, msg))
		UT_FAIL("rc %d (want %d), message '%s' (want '%s')", rc, want, err, msg);
	/* Nothing escaped into the directory above the root. */
	int t = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	UT_ASSERT(faccessat(t, "outside", F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
	close(t);
	UT_EQ(agent_pkg_clear(rootfd), 0);
}

static void expect_file(const char *path, const char *content, mode_t mode)
{
	char buf[4096];
	int fd = openat(rootfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		UT_FAIL("%s: %s", path, strerror(errno));
	ssize_t n = read(fd, buf, sizeof buf);
	struct stat st;
	UT_EQ(fstat(fd, &st), 0);
	close(fd);
	UT_EQ(n, (ssize_t)strlen(content));
	UT_ASSERT(memcmp(buf, content, (size_t)n) == 0);
	UT_EQ(st.st_mode & 07777, mode);
}

UT_TEST(pkg_unpacks_files_dirs_links)
{
	setup();
	char longname[300];
	snprintf(longname, sizeof longname, "deep/%0200d/file.txt", 0);
	const struct rt_entry e[] = {
		{ .name = "./", .type = '5' },
		{ .name = "./bin/", .type = '5' },
		{ .name = "./bin/run", .type = '0', .data = "#!x\n", .mode = 04755 },
		{ .name = "lib/libx.so.1", .type = '0', .data = "ELF" },
		{ .name = "lib/libx.so", .type = '2', .link = "libx.so.1" },
		{ .name = "lib/sub/up", .type = '2', .link = "./" },
		{ .name = "hard", .type = '1', .link = "./lib/libx.so.1" },
		{ .name = longname, .type = '0', .data = "long" },
		{ .name = "", .type = 'x', .data = "29 path=pax/named/by/pax.txt\n" },
		{ .name = "ignored-name", .type = '0', .data = "pax" },
		{ .name = "empty", .type = '0', .data = "" },
		{ .name = "a//b/./c", .type = '0', .data = "c" },
	};
	char err[256] = "";
	struct agent_pkg_stats st;
	int rc = unpack(e, sizeof e / sizeof e[0], 0, err, sizeof err, &st);
	if (rc)
		UT_FAIL("unpack: %d %s", rc, err);
	expect_file("bin/run", "#!x\n", 0755);        /* set-uid dropped */
	expect_file("lib/libx.so.1", "ELF", 0644);
	expect_file("lib/libx.so", "ELF", 0644);      /* through the symlink */
	expect_file("hard", "ELF", 0644);
	expect_file(longname, "long", 0644);
	expect_file("pax/named/by/pax.txt", "pax", 0644);
	expect_file("empty", "", 0644);
	expect_file("a/b/c", "c", 0644);
	UT_ASSERT(faccessat(rootfd, "ignored-name", F_OK, 0) < 0);
	char target[64];
	ssize_t n = readlinkat(rootfd, "lib/libx.so", target, sizeof target);
	UT_ASSERT(n == 9 && memcmp(target, "libx.so.1", 9) == 0);
	UT_EQ(st.files, 6);
	UT_EQ(st.links, 3);
	UT_EQ(st.bytes, 4 + 3 + 4 + 3 + 0 + 1);
	teardown();
}

UT_TEST(pkg_refuses_escapes)
{
	setup();
	const struct rt_entry dotdot[] = { { .name = "../outside", .type = '0', .data = "x" } };
	expect_refused(dotdot, 1, -EPERM, "'..' in path");
	const struct rt_entry mid[] = { { .name = "a/../../outside", .type = '0', .data = "x" } };
	expect_refused(mid, 1, -EPERM, "'..' in path");
	const struct rt_entry abs[] = { { .name = "/tmp/outside", .type = '0', .data = "x" } };
	expect_refused(abs, 1, -EPERM, "absolute path");
	const struct rt_entry sl_abs[] = { { .name = "l", .type = '2', .link = "/etc" } };
	expect_refused(sl_abs, 1, -EPERM, "leaves its directory");
	const struct rt_entry sl_up[] = { { .name = "d/l", .type = '2', .link = "../.." } };
	expect_refused(sl_up, 1, -EPERM, "leaves its directory");
	/* A link that is fine by itself, then a write through it. */
	const struct rt_entry through[] = {
		{ .name = "d", .type = '2', .link = "sub" },
		{ .name = "sub/", .type = '5' },
		{ .name = "d/x", .type = '0', .data = "x" },
	};
	expect_refused(through, 3, -EPERM, "d/x: refused");
	/* Replacing a symlink by a file is refused too (no write through it). */
	const struct rt_entry over[] = {
		{ .name = "f", .type = '2', .link = "g" },
		{ .name = "f", .type = '0', .data = "x" },
	};
	expect_refused(over, 2, -EPERM, "file f: refused");
	const struct rt_entry hl_out[] = { { .name = "h", .type = '1', .link = "../outside" } };
	expect_refused(hl_out, 1, -EPERM, "leaves the package");
	const struct rt_entry hl_none[] = { { .name = "h", .type = '1', .link = "nothing" } };
	expect_refused(hl_none, 1, -EPERM, "not an earlier file");
	const struct rt_entry dev[] = { { .name = "null", .type = '3' } };
	expect_refused(dev, 1, -EPERM, "unsupported type '3'");
	const struct rt_entry fifo[] = { { .name = "p", .type = '6' } };
	expect_refused(fifo, 1, -EPERM, "unsupported type '6'");
	char deep[400] = "";
	for (int i = 0; i < 70; i++)
		strcat(deep, "d/");
	strcat(deep, "f");
	const struct rt_entry nest[] = { { .name = deep, .type = '0', .data = "x" } };
	expect_refused(nest, 1, -EPERM, "nested deeper");
	teardown();
}

UT_TEST(pkg_refuses_broken_archives)
{
	setup();
	char err[256];
	/* Not gzip at all. */
	static const uint8_t text[] = "this is not a package, just some text bytes";
	UT_EQ(agent_pkg_unpack(text, sizeof text, rootfd, &lim, NULL, err, sizeof err), -EBADMSG);
	UT_ASSERT(strstr(err, "not gzip"));
	/* gzip, but not tar. */
	size_t len;
	uint8_t junk[2048];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (uint8_t)(i * 7 + 1);
	uint8_t *gz = rt_gzip(junk, sizeof junk, &len);
	UT_EQ(agent_pkg_unpack(gz, len, rootfd, &lim, NULL, err, sizeof err), -EBADMSG);
	UT_ASSERT(strstr(err, "checksum"));
	free(gz);
	/* A good archive, damaged: a flipped byte, then cut short. */
	const struct rt_entry e[] = { { .name = "f", .type = '0', .data = "0123456789" } };
	gz = rt_targz(e, 1, 0, &len);
	gz[len - 8] ^= 0x55;                        /* the CRC in the trailer */
	UT_EQ(agent_pkg_unpack(gz, len, rootfd, &lim, NULL, err, sizeof err), -EBADMSG);
	UT_ASSERT(strstr(err, "corrupt gzip"));
	gz[len - 8] ^= 0x55;
	UT_EQ(agent_pkg_unpack(gz, len - 12, rootfd, &lim, NULL, err, sizeof err), -EBADMSG);
	UT_ASSERT(strstr(err, "truncated gzip"));
	free(gz);
	UT_EQ(agent_pkg_clear(rootfd), 0);
	/* A tar cut inside a file's data. */
	const struct rt_entry cut[] = { { .name = "f", .type = '0', .data = "abc", .claim_size = 5000 } };
	expect_refused(cut, 1, -EBADMSG, "truncated tar");
	const struct rt_entry sum[] = { { .name = "f", .type = '0', .data = "x", .bad_checksum = 1 } };
	expect_refused(sum, 1, -EBADMSG, "checksum");
	const struct rt_entry pax[] = { { .name = "", .type = 'x', .data = "99 path=x\n" },
					{ .name = "f", .type = '0', .data = "x" } };
	expect_refused(pax, 2, -EBADMSG, "pax");
	/* No end blocks, but whole entries: accepted like tar(1) does. */
	char msg[256] = "";
	UT_EQ(unpack(e, 1, 1, msg, sizeof msg, NULL), 0);
	expect_file("f", "0123456789", 0644);
	teardown();
}

/* Empty GNU long-name and pax entries (regression: an empty one left the
 * reader in its metadata state with no buffer). */
UT_TEST(pkg_empty_meta_entries)
{
	setup();
	const struct rt_entry e[] = {
		{ .name = "", .type = 'x' },
		{ .name = "a", .type = '0', .data = "A" },
		{ .name = "././@LongLink", .type = 'L', .claim_size = 0 },
		{ .name = "b", .type = '0', .data = "B" },
	};
	char err[256] = "";
	int rc = unpack(e, 4, 0, err, sizeof err, NULL);
	if (rc)
		UT_FAIL("unpack: %d %s", rc, err);
	expect_file("a", "A", 0644);
	expect_file("b", "B", 0644);   /* an empty long name: the header's name counts */
	teardown();
}

UT_TEST(pkg_limits)
{
	setup();
	/* A gzip bomb: 4 MiB of zeros squeezes into a few KiB, over the 1 MiB budget. */
	size_t big = 4u << 20;
	char *zeros = calloc(1, big);
	const struct rt_entry bomb[] = { { .name = "zeros", .type = '0', .data = zeros, .len = big } };
	size_t len;
	uint8_t *gz = rt_targz(bomb, 1, 0, &len);
	UT_ASSERT(len < 64 * 1024);
	char err[256];
	UT_EQ(agent_pkg_unpack(gz, len, rootfd, &lim, NULL, err, sizeof err), -EFBIG);
	UT_ASSERT(strstr(err, "memory budget"));
	free(gz);
	/* Many small files that add up past the budget. */
	struct rt_entry many[20];
	char names[20][8];
	for (int i = 0; i < 20; i++) {
		snprintf(names[i], sizeof names[i], "f%d", i);
		many[i] = (struct rt_entry){ .name = names[i], .type = '0', .data = zeros, .len = 60000 };
	}
	expect_refused(many, 20, -EFBIG, "memory budget");
	free(zeros);
	/* More entries than allowed. */
	struct rt_entry dirs[101];
	char dn[101][8];
	for (int i = 0; i < 101; i++) {
		snprintf(dn[i], sizeof dn[i], "d%d", i);
		dirs[i] = (struct rt_entry){ .name = dn[i], .type = '5' };
	}
	expect_refused(dirs, 101, -E2BIG, "more than 100 entries");
	/* A directory entry claiming data over the budget. */
	const struct rt_entry claim[] = { { .name = "d", .type = '5', .claim_size = 1ull << 30 } };
	expect_refused(claim, 1, -EFBIG, "claims");
	teardown();
}

/* Random damage to a tar with every entry kind (before gzip, so the reader
 * sees it): each archive is unpacked or refused with a message, and nothing
 * ever lands outside the root (ASan watches the parsing). */
UT_TEST(pkg_random_damage_never_escapes)
{
	setup();
	char longname[200];
	snprintf(longname, sizeof longname, "long/%0150d", 7);
	const struct rt_entry e[] = {
		{ .name = "d/", .type = '5' },
		{ .name = "d/f", .type = '0', .data = "contents of f" },
		{ .name = "d/l", .type = '2', .link = "f" },
		{ .name = "h", .type = '1', .link = "d/f" },
		{ .name = "", .type = 'x', .data = "18 path=d/p/x.txt\n" },
		{ .name = "px", .type = '0', .data = "pax" },
		{ .name = longname, .type = '0', .data = "long" },
	};
	size_t len;
	uint8_t *gz = rt_targz(e, sizeof e / sizeof e[0], 0, &len);
	char err0[256] = "";
	UT_EQ(agent_pkg_unpack(gz, len, rootfd, &lim, NULL, err0, sizeof err0), 0);
	expect_file("d/p/x.txt", "pax", 0644);
	UT_EQ(agent_pkg_clear(rootfd), 0);
	/* Get the plain tar back out of the gzip. */
	uint8_t *tar = malloc(1u << 20);
	z_stream zs;
	memset(&zs, 0, sizeof zs);
	UT_EQ(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
	zs.next_in = gz;
	zs.avail_in = (uInt)len;
	zs.next_out = tar;
	zs.avail_out = 1u << 20;
	UT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
	size_t tlen = (1u << 20) - zs.avail_out;
	inflateEnd(&zs);
	free(gz);

	/* Header blocks: their checksums are fixed up after half the damage,
	 * so the damage reaches the parser behind the checksum. */
	size_t hdrs[64], nh = 0;
	for (size_t off = 0; off + 512 <= tlen && nh < 64; off += 512)
		if (memcmp(tar + off + 257, "ustar", 5) == 0)
			hdrs[nh++] = off;
	UT_ASSERT(nh >= 7);
	uint64_t x = 0x2545f4914f6cdd1dull;
	int accepted = 0, refused = 0;
	uint8_t *m = malloc(tlen);
	for (int it = 0; it < 1000; it++) {
		memcpy(m, tar, tlen);
		int flips = 1 + (int)(x % 8);
		for (int k = 0; k < flips; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			size_t at = (size_t)(x % tlen);
			m[at] = (x >> 40) & 1 ? (uint8_t)(x >> 32) : (uint8_t)"./0 \n=x"[(x >> 33) % 8];
		}
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		for (size_t h = 0; (x & 16) && h < nh; h++) {
			uint8_t *b = m + hdrs[h];
			unsigned sum = 0;
			memset(b + 148, ' ', 8);
			for (int i = 0; i < 512; i++)
				sum += b[i];
			snprintf((char *)b + 148, 8, "%06o", sum & 0777777);
		}
		size_t cut = (x & 3) == 0 ? (size_t)(x >> 8) % tlen : tlen;
		uint8_t *g = rt_gzip(m, cut, &len);
		char err[256] = "";
		int rc = agent_pkg_unpack(g, len, rootfd, &lim, NULL, err, sizeof err);
		free(g);
		if (rc == 0) {
			accepted++;
		} else {
			refused++;
			UT_ASSERT(rc < 0 && strncmp(err, "package: ", 9) == 0);
		}
		int t = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		UT_ASSERT(t >= 0);
		int nent = 0;
		DIR *d = fdopendir(t);
		UT_ASSERT(d);
		struct dirent *de;
		while ((de = readdir(d)))
			nent += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
		closedir(d);
		UT_EQ(nent, 1);                 /* only "root" */
		UT_EQ(agent_pkg_clear(rootfd), 0);
	}
	UT_ASSERT(refused > 0 && accepted > 0);
	printf("    %d damaged archives accepted, %d refused\n", accepted, refused);
	free(m);
	free(tar);
	teardown();
}
