/* test_cli_fake.h — harness for the CLI's black-box tests: runs the built
 * `unifork` binary (found next to the unit-test binary: ../bin/unifork) in
 * a child process against a fake HTTP server in the test process, records
 * every request the CLI sends and captures its stdout, stderr and exit
 * status.
 *
 * In argv and env strings "@PORT@" is replaced by the fake server's port.
 * Unless argv has --url or env sets UNIFORK_LISTEN, the child gets
 * UNIFORK_LISTEN=127.0.0.1:PORT.  The child's environment is only PATH plus
 * `env`, and it runs in `cwd` (so ./var/token is under the test's control).
 */
#ifndef TEST_CLI_FAKE_H
#define TEST_CLI_FAKE_H

#include <stddef.h>

enum fake_mode {
	FAKE_REPLY, /* read the request, send `raw`, close */
	FAKE_EARLY, /* read only the head, send `raw`, then read nothing more until the CLI exits */
	FAKE_CLOSE, /* read the request, close without answering */
	FAKE_HANG,  /* read the request, never answer (until the CLI exits) */
};

struct fake_resp {
	enum fake_mode mode;
	const char *raw; /* the response bytes */
	size_t len;      /* 0: strlen(raw) */
};

#define FAKE_MAX_REQS 4
#define FAKE_MAX_HDRS 32

struct fake_req {
	char method[16];
	char target[2048];
	char version[16];
	struct {
		char name[64];
		char value[8192];
	} hdrs[FAKE_MAX_HDRS];
	int nhdrs;
	char *body;
	size_t body_len;
};

struct cli_run {
	int status; /* exit code; 128+N if killed by signal N */
	char *out, *err;
	size_t out_len, err_len;
	int nreqs; /* connections seen (requests recorded up to FAKE_MAX_REQS) */
	struct fake_req req[FAKE_MAX_REQS];
};

/* A complete response with the right Content-Length (malloc'd). */
char *fake_http(int status, const char *headers, const char *body);
/* The same as a chunked response cut into pieces of `chunk` bytes. */
char *fake_http_chunked(int status, const char *headers, const char *body, size_t chunk);

/* Run `unifork argv...` serving resps[0..nresps) to its connections in
 * order; NULL-terminated argv (without the program name) and env. */
void cli_run(const char *cwd, const char *const *argv, const char *const *env,
	     const void *in, size_t in_len, const struct fake_resp *resps, int nresps,
	     struct cli_run *r);
void cli_run_free(struct cli_run *r);

/* A header of a recorded request (case-insensitive), or NULL. */
const char *fake_hdr(const struct fake_req *q, const char *name);

/* A fresh directory under /tmp (malloc'd path); removed by fake_rmtree. */
char *fake_tmpdir(void);
void fake_rmtree(const char *path);
/* Write a file (creating parent directories), mode as given. */
void fake_write(const char *dir, const char *rel, const void *data, size_t len, int mode);
/* Run a shell command line, returning its exit status (test helper). */
int fake_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
