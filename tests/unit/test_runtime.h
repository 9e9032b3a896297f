/* test_runtime.h — what the runtime tests (tests/unit/test_runtime_*.c)
 * share (tests/unit/test_runtime_util.c): an agent server with the runtime
 * dispatcher in a forked child over AF_UNIX, its function directory in a
 * temporary directory (no tmpfs mount), packages from build/functions/ or
 * made in memory (a small tar.gz writer that can also write hostile
 * archives). */
#ifndef TESTS_UNIT_TEST_RUNTIME_H
#define TESTS_UNIT_TEST_RUNTIME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "proto/agent_client.h"

#define RT_TMO 60000
#define RT_PYTHON_SO "build/bin/uf-runtime-python.so"
#define RT_PYTHON_STDLIB "/usr/lib/python3.11"
#define RT_FUNCTIONS "build/functions"

struct rt_srv {
	pid_t pid;
	struct sockaddr_un addr;
	socklen_t addr_len;
	char dir[64];           /* the function directory */
};

/* Start the dispatcher in a child; fn_dir is a fresh temporary directory.
 * The child ends with exit() so LeakSanitizer checks it, except after
 * rt_start_python(): CPython keeps objects in mmap'd pymalloc arenas that
 * LeakSanitizer does not scan, so every CPython process looks leaky; those
 * servers end with _exit(). */
void rt_start(struct rt_srv *s);
void rt_start_python(struct rt_srv *s);
/* Connect and read the Hello (h may be NULL).  Returns the fd. */
int rt_dial(struct rt_srv *s, struct agent_hello *h);
/* Shut the server down, check it exited 0, remove the directory. */
void rt_stop(struct rt_srv *s);

/* Init on fd: fills *res, returns agent_client_init()'s result. */
int rt_init(int fd, const char *runtime, const char *handler, const void *pkg, size_t len,
	    const char *const *env, size_t n_env, uint32_t memory_mb, struct agent_init_result *res);
/* Deploy a package from build/functions/NAME.tar.gz; asserts InitResult.ok. */
void rt_deploy(int fd, const char *runtime, const char *handler, const char *name,
	       const char *const *env, size_t n_env);
/* Invoke with `event` (a string); asserts the exchange worked. */
void rt_call(int fd, const char *event, struct agent_result *r);
/* Does the buffer contain the string? */
int rt_has(const void *p, size_t n, const char *s);

/* The whole file, malloc'd; asserts it exists (build it with `make functions`). */
uint8_t *rt_read_file(const char *path, size_t *len);

/* ---- in-memory tar.gz ---- */

struct rt_entry {
	const char *name;
	char type;              /* '0' file, '5' dir, '2' symlink, '1' hard link, 'x' pax, ... */
	const char *data;       /* file contents (or pax records); NULL = "" */
	size_t len;             /* 0: strlen(data) */
	const char *link;       /* link target */
	unsigned mode;          /* 0: 0644 (0755 for dirs) */
	int bad_checksum;
	uint64_t claim_size;    /* nonzero: the header's size, whatever data holds */
};

/* A tar archive of the entries (names over 100 bytes get a GNU 'L' entry),
 * with its two end blocks unless `no_end`, gzipped.  Returns malloc'd bytes. */
uint8_t *rt_targz(const struct rt_entry *e, size_t n, int no_end, size_t *len);
/* gzip arbitrary bytes. */
uint8_t *rt_gzip(const uint8_t *p, size_t n, size_t *len);

#endif
