/* build_main.c — `uf-worker build`: parse the request, hash the artifacts,
 * run the template chain (build.c) and answer with one BuildResult frame on
 * --fd, or a line on stdout without it.  Exit status: 0 built, 1 failed,
 * 2 usage, 4 the function's init failed. */
#include "forker/worker/build.h"
#include "forker/worker/jail_worker.h"
#include "forker/worker/worker.h"
#include "vmm/err.h"
#include "vmm/fileio.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define MAX_ENV 1024
#define MAX_PACKAGE (UF_FRAME_MAX - (256u << 10))

void build_key(const struct build_req *q, char key[17])
{
	size_t clen = strlen(q->cmdline);
	size_t n = sizeof(q->origin) + sizeof(q->mem_mb) + clen;
	uint8_t *buf = malloc(n), h[SNAP_SHA256_LEN];
	char hex[2 * SNAP_SHA256_LEN + 1];
	if (!buf) {
		snprintf(key, 17, "%016x", 0);
		return;
	}
	memcpy(buf, &q->origin, sizeof(q->origin));
	memcpy(buf + sizeof(q->origin), &q->mem_mb, sizeof(q->mem_mb));
	memcpy(buf + sizeof(q->origin) + sizeof(q->mem_mb), q->cmdline, clen);
	snap_sha256(buf, n, h);
	free(buf);
	snap_hex(h, SNAP_SHA256_LEN, hex);
	memcpy(key, hex, 16);
	key[16] = 0;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

static int hash(const char *what, const char *path, uint8_t out[SNAP_SHA256_LEN])
{
	if (!path)
		return 0;
	if (snap_sha256_file(path, out)) {
		fprintf(stderr, "uf-worker: %s %s: %s\n", what, path, vmm_strerror());
		return -1;
	}
	return 0;
}

static int answer(int fd, const struct build_out *o)
{
	if (fd < 0) {
		printf("%s %s (base %s, runtime %s, %llu bytes, %.1f s)\n",
		       o->status == UFWORKER__BUILD_STATUS__BUILD_OK ? "ok" : "failed", o->message,
		       o->base_reused ? "reused" : "built", o->runtime_reused ? "reused" : "built",
		       (unsigned long long)o->template_bytes, (double)o->build_us / 1e6);
		return 0;
	}
	Ufworker__BuildResult br = UFWORKER__BUILD_RESULT__INIT;
	br.status = o->status;
	br.message = (char *)o->message;
	br.template_bytes = o->template_bytes;
	br.base_reused = o->base_reused;
	br.runtime_reused = o->runtime_reused;
	br.build_us = o->build_us;
	br.init_us = o->init_us;
	uf_wmsg m = UFWORKER__WORKER_MSG__INIT;
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_BUILD_RESULT, &br);
	int r = uf_wmsg_send(fd, &m, 10000);
	if (r)
		fprintf(stderr, "uf-worker: build result not sent: %s\n", strerror(-r));
	return r;
}

/* KEY=VALUE entries separated by NUL bytes (values may hold newlines). */
static int read_env_file(const char *path, struct build_req *q, const char **env, uint8_t **buf)
{
	size_t len;
	if (vmm_read_file("env file", path, 4u << 20, buf, &len)) {
		fprintf(stderr, "uf-worker: %s\n", vmm_strerror());
		return -1;
	}
	if (len && (*buf)[len - 1] != 0) {
		fprintf(stderr, "uf-worker: %s: last entry not NUL-terminated\n", path);
		return -1;
	}
	for (size_t off = 0; off < len;) {
		const char *e = (const char *)*buf + off;
		if (q->n_env == MAX_ENV || e[0] == '=' || !strchr(e, '=')) {
			fprintf(stderr, "uf-worker: %s: bad entry\n", path);
			return -1;
		}
		env[q->n_env++] = e;
		off += strlen(e) + 1;
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: uf-worker build --templates DIR --kernel FILE --initrd FILE [--agent FILE]\n"
		"         --out DIR --runtime NAME [--package FILE] [--handler H] [--env K=V]...\n"
		"         [--env-file FILE] [--mem-mb N] [--timeout-ms N] [--fd N] [--cmdline STR]\n");
}

int worker_build_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"templates", required_argument, 0, 'T'}, {"kernel", required_argument, 0, 'k'},
		{"initrd", required_argument, 0, 'i'},    {"agent", required_argument, 0, 'a'},
		{"out", required_argument, 0, 'o'},       {"runtime", required_argument, 0, 'r'},
		{"package", required_argument, 0, 'p'},   {"handler", required_argument, 0, 'H'},
		{"env", required_argument, 0, 'e'},       {"mem-mb", required_argument, 0, 'm'},
		{"timeout-ms", required_argument, 0, 't'}, {"fd", required_argument, 0, 'f'},
		{"cmdline", required_argument, 0, 'c'},   {"env-file", required_argument, 0, 'E'},
		{0, 0, 0, 0},
	};
	static const char *env[MAX_ENV];
	struct build_req q = {.cmdline = BUILD_DEFAULT_CMDLINE, .handler = "", .mem_mb = 128,
			      .timeout_ms = 3000, .env = env};
	const char *agent = NULL, *pkg = NULL, *envfile = NULL;
	long fd = -1;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end = NULL;
		switch (c) {
		case 'T': q.templates = optarg; break;
		case 'k': q.kernel = optarg; break;
		case 'i': q.initrd = optarg; break;
		case 'a': agent = optarg; break;
		case 'o': q.out = optarg; break;
		case 'r': q.runtime = optarg; break;
		case 'p': pkg = optarg; break;
		case 'H': q.handler = optarg; break;
		case 'c': q.cmdline = optarg; break;
		case 'E': envfile = optarg; break;
		case 'e':
			if (q.n_env == MAX_ENV || !strchr(optarg, '=') || optarg[0] == '=') {
				usage();
				return 2;
			}
			env[q.n_env++] = optarg;
			break;
		case 'm': q.mem_mb = (uint32_t)strtoul(optarg, &end, 10); break;
		case 't': q.timeout_ms = (uint32_t)strtoul(optarg, &end, 10); break;
		case 'f': fd = strtol(optarg, &end, 10); break;
		default: usage(); return 2;
		}
		if (end && *end) {
			usage();
			return 2;
		}
	}
	if (!q.templates || !q.kernel || !q.initrd || !q.out || !q.runtime || !name_ok(q.runtime) ||
	    optind != argc || q.mem_mb < 16 || q.mem_mb > 16384 || q.mem_mb % 2 || fd > 1024) {
		usage();
		return 2;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	if (hash("kernel", q.kernel, q.origin.kernel) || hash("initrd", q.initrd, q.origin.initrd) ||
	    hash("agent", agent, q.origin.agent))
		return 1;
	uint8_t *ebuf = NULL;
	if (envfile && read_env_file(envfile, &q, env, &ebuf))
		return 2;
	uint8_t *pbuf = NULL;
	size_t plen = 0;
	if (pkg && vmm_read_file("package", pkg, MAX_PACKAGE, &pbuf, &plen)) {
		struct build_out o = {.status = UFWORKER__BUILD_STATUS__BUILD_FAILED};
		snprintf(o.message, sizeof(o.message), "%s", vmm_strerror());
		answer((int)fd, &o);
		return 1;
	}
	q.package = pbuf;
	q.package_len = plen;
	/* Everything read from runtimed's side is in memory now: jail. */
	const char **ro[] = {&q.kernel, &q.initrd};
	if (worker_jail_build(ro, 2, &q.templates, &q.out, (int)fd)) {
		struct build_out o = {.status = UFWORKER__BUILD_STATUS__BUILD_FAILED};
		snprintf(o.message, sizeof(o.message), "%s", vmm_strerror());
		fprintf(stderr, "uf-worker: %s\n", o.message);
		answer((int)fd, &o);
		free(pbuf);
		free(ebuf);
		return 1;
	}
	struct build_out o;
	int r = worker_build(&q, &o);
	free(pbuf);
	free(ebuf);
	if (r)
		fprintf(stderr, "uf-worker: build of %s: %s\n", q.out, o.message);
	answer((int)fd, &o);
	if (fd >= 0)
		close((int)fd);
	if (r == 0)
		return 0;
	return o.status == UFWORKER__BUILD_STATUS__BUILD_INIT_FAILED ? 4 : 1;
}
