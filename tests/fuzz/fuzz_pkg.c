/* fuzz_pkg.c — libFuzzer target over the function package reader
 * (guest-agent/runtime_pkg.c + runtime_pkg_fs.c): the .tar.gz a user
 * uploads is unpacked by the agent into a directory, so every byte of it is
 * hostile.
 *
 * Input: byte 0 picks the mode.  Even: the rest is a tar stream, which this
 * harness gzips (zlib, level 1) before handing it to agent_pkg_unpack() — so
 * the fuzzer explores the tar state machine and the filesystem rules instead
 * of dying at the gzip CRC.  Odd: the rest goes in as it is (the gzip layer
 * itself: truncation, bad headers, multiple members, bombs).
 *
 * The unpack directory is a private temporary directory, emptied after each
 * input with agent_pkg_clear().  Checked beyond the sanitizers:
 *   - no fd is leaked by a success or a failure (the lowest free fd is the
 *     same before and after);
 *   - a success stays within the limits it was given (bytes and entries);
 *   - a failure always says why (a non-empty message);
 *   - nothing is ever created outside the unpack directory (its parent
 *     holds only it after every input).
 *
 * Seeds: tests/fuzz/pkg/ (written by tests/fuzz/gen_pkg_seeds.py).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "guest-agent/runtime_pkg.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

#define FUZZ_MAX_BYTES   (1u << 20)
#define FUZZ_MAX_ENTRIES 64u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parent_fd = -1, root_fd = -1;

static char tmp_path[4096];

/* Leave no directory behind in TMPDIR when the fuzzer exits normally. */
static void teardown(void)
{
	if (root_fd >= 0 && agent_pkg_clear(root_fd) == 0 && unlinkat(parent_fd, "root", AT_REMOVEDIR) == 0)
		rmdir(tmp_path);
}

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(tmp_path, sizeof tmp_path, "%s/uf-fuzz-pkg.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	CHECK(mkdtemp(tmp_path) != NULL);
	parent_fd = open(tmp_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(parent_fd >= 0);
	CHECK(mkdirat(parent_fd, "root", 0700) == 0);
	root_fd = openat(parent_fd, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(root_fd >= 0);
	atexit(teardown);
}

static int lowest_free_fd(void)
{
	int fd = dup(0);
	CHECK(fd >= 0);
	close(fd);
	return fd;
}

/* The parent directory must hold exactly "root": an entry that escaped the
 * unpack directory by one level would show up here. */
static void check_parent(void)
{
	int fd = openat(parent_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0);
	DIR *d = fdopendir(fd);
	CHECK(d != NULL);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		CHECK(strcmp(e->d_name, "root") == 0);
		n++;
	}
	closedir(d);
	CHECK(n == 1);
}

/* gzip the tar stream (level 1: speed); returns a malloc'd buffer. */
static uint8_t *gzip(const uint8_t *in, size_t n, size_t *out_len)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	CHECK(deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
	size_t cap = deflateBound(&z, (uLong)n) + 64;
	uint8_t *out = malloc(cap);
	CHECK(out != NULL);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
	*out_len = cap - z.avail_out;
	deflateEnd(&z);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > (4u << 20))
		return 0;
	if (root_fd < 0)
		setup();

	const uint8_t *pkg = data + 1;
	size_t len = size - 1;
	uint8_t *owned = NULL;
	if ((data[0] & 1) == 0) {
		owned = gzip(data + 1, size - 1, &len);
		pkg = owned;
	}

	int free_before = lowest_free_fd();
	struct agent_pkg_limits lim = { .max_bytes = FUZZ_MAX_BYTES, .max_entries = FUZZ_MAX_ENTRIES };
	struct agent_pkg_stats st;
	char err[256] = "";
	memset(&st, 0, sizeof st);
	int rc = agent_pkg_unpack(pkg, len, root_fd, &lim, &st, err, sizeof err);
	if (rc == 0) {
		CHECK(st.bytes <= lim.max_bytes);
		CHECK((uint64_t)st.files + st.dirs + st.links <= lim.max_entries);
	} else {
		CHECK(rc < 0);
		CHECK(err[0] != '\0');
	}
	CHECK(lowest_free_fd() == free_before);
	check_parent();
	CHECK(agent_pkg_clear(root_fd) == 0);
	CHECK(lowest_free_fd() == free_before);
	free(owned);
	return 0;
}
