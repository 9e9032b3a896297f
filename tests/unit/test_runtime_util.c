/* test_runtime_util.c — helpers of the runtime tests (test_runtime.h). */
#include "tests/unit/test_runtime.h"
#include "tests/unit/ut.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "guest-agent/runtime.h"
#include "guest-agent/runtime_pkg.h"
#include "guest-agent/server.h"

static int no_entropy(void *ctx, const uint8_t *b, size_t n) { return 0; }
static int no_reseed(void *ctx) { return 0; }
static int no_clock(void *ctx, int64_t ns) { return 0; }
static const struct agent_fixup_ops no_fixup = { no_entropy, no_reseed, no_clock, NULL };

static void start(struct rt_srv *s, int python)
{
	static int n;
	memset(s, 0, sizeof *s);
	snprintf(s->dir, sizeof s->dir, "/tmp/uf-rt-test.XXXXXX");
	UT_ASSERT(mkdtemp(s->dir) != NULL);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	UT_ASSERT(lfd >= 0);
	s->addr.sun_family = AF_UNIX;
	int k = snprintf(s->addr.sun_path + 1, sizeof s->addr.sun_path - 1, "uf-rt-test-%d-%d",
			 (int)getpid(), n++);
	s->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)k);
	UT_ASSERT(bind(lfd, (struct sockaddr *)&s->addr, s->addr_len) == 0);
	UT_ASSERT(listen(lfd, 16) == 0);
	fflush(NULL);
	s->pid = fork();
	UT_ASSERT(s->pid >= 0);
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGPIPE, SIG_IGN);   /* as the agent's main() does */
		struct agent_runtime_config cfg = {
			.fn_dir = s->dir, .mount_tmpfs = 0, .python_so = RT_PYTHON_SO,
			.python_stdlib = RT_PYTHON_STDLIB, .exec_ready_ms = 30000,
		};
		agent_runtime_configure(&cfg);
		struct agent_server_opts o = {
			.handler = &agent_handler_runtime, .status = agent_runtime_status,
			.after_fixup = agent_runtime_after_fixup, .fixup = &no_fixup,
			.build_id = "rt-test", .io_timeout_ms = RT_TMO, .quiet = 1,
		};
		int rc = agent_server_run_opts(lfd, &o);
		close(lfd);
		if (python)
			_exit(rc < 0 ? 100 : rc);
		exit(rc < 0 ? 100 : rc);   /* exit, not _exit: LeakSanitizer runs */
	}
	close(lfd);
}

void rt_start(struct rt_srv *s)
{
	start(s, 0);
}

void rt_start_python(struct rt_srv *s)
{
	start(s, 1);
}

int rt_dial(struct rt_srv *s, struct agent_hello *h)
{
	struct agent_hello tmp;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	UT_ASSERT(fd >= 0);
	UT_ASSERT(connect(fd, (struct sockaddr *)&s->addr, s->addr_len) == 0);
	UT_EQ(agent_client_hello(fd, h ? h : &tmp, RT_TMO), 0);
	return fd;
}

void rt_stop(struct rt_srv *s)
{
	int fd = rt_dial(s, NULL);
	UT_EQ(agent_client_shutdown(fd, 0, RT_TMO), 0);
	int st;
	UT_ASSERT(waitpid(s->pid, &st, 0) == s->pid);
	close(fd);
	if (!WIFEXITED(st))
		UT_FAIL("server died with signal %d", WTERMSIG(st));
	UT_EQ(WEXITSTATUS(st), 0);
	int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	UT_ASSERT(dfd >= 0);
	UT_EQ(agent_pkg_clear(dfd), 0);
	close(dfd);
	UT_EQ(rmdir(s->dir), 0);
}

int rt_init(int fd, const char *runtime, const char *handler, const void *pkg, size_t len,
	    const char *const *env, size_t n_env, uint32_t memory_mb, struct agent_init_result *res)
{
	struct agent_init_req req = {
		.package = pkg, .package_len = len, .runtime = runtime,
		.handler = handler ? handler : "", .env = env, .n_env = n_env,
		.memory_mb = memory_mb,
	};
	return agent_client_init(fd, &req, res, RT_TMO);
}

void rt_deploy(int fd, const char *runtime, const char *handler, const char *name,
	       const char *const *env, size_t n_env)
{
	char path[256];
	size_t len;
	snprintf(path, sizeof path, "%s/%s.tar.gz", RT_FUNCTIONS, name);
	uint8_t *pkg = rt_read_file(path, &len);
	struct agent_init_result res;
	UT_EQ(rt_init(fd, runtime, handler, pkg, len, env, n_env, 0, &res), 0);
	free(pkg);
	if (!res.ok)
		UT_FAIL("deploy of %s failed: %s", name, res.error);
}

void rt_call(int fd, const char *event, struct agent_result *r)
{
	static unsigned n;
	char id[32];
	snprintf(id, sizeof id, "call-%u", n++);
	UT_EQ(agent_client_invoke(fd, id, event, strlen(event), 0, r), 0);
	UT_ASSERT(strcmp(r->call_id, id) == 0);
}

int rt_has(const void *p, size_t n, const char *s)
{
	return p && memmem(p, n, s, strlen(s)) != NULL;
}

uint8_t *rt_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		UT_FAIL("%s: %s (run `make functions`)", path, strerror(errno));
	struct stat st;
	UT_ASSERT(fstat(fd, &st) == 0);
	uint8_t *p = malloc((size_t)st.st_size + 1);
	UT_ASSERT(p);
	UT_EQ(read(fd, p, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return p;
}

/* ---- tar.gz writer ---- */

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 4096;
		b->p = realloc(b->p, b->cap);
		UT_ASSERT(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void pad(struct buf *b)
{
	static const uint8_t zero[512];
	put(b, zero, (512 - b->len % 512) % 512);
}

static void header(struct buf *b, const char *name, char type, uint64_t size, const char *link,
		   unsigned mode, int bad_sum)
{
	uint8_t h[512] = { 0 };
	snprintf((char *)h, 100, "%s", name);
	snprintf((char *)h + 100, 8, "%07o", mode & 07777);
	snprintf((char *)h + 108, 8, "%07o", 0);
	snprintf((char *)h + 116, 8, "%07o", 0);
	snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
	snprintf((char *)h + 136, 12, "%011o", 0);
	h[156] = (uint8_t)type;
	if (link)
		memcpy(h + 157, link, strnlen(link, 100));
	memcpy(h + 257, "ustar\0" "00", 8);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum + (bad_sum ? 1 : 0));
	put(b, h, 512);
}

uint8_t *rt_targz(const struct rt_entry *e, size_t n, int no_end, size_t *len)
{
	struct buf b = { 0 };
	for (size_t i = 0; i < n; i++) {
		const char *data = e[i].data ? e[i].data : "";
		size_t dlen = e[i].len ? e[i].len : strlen(data);
		if (strlen(e[i].name) >= 100) {   /* GNU long name */
			size_t nl = strlen(e[i].name) + 1;
			header(&b, "././@LongLink", 'L', nl, NULL, 0644, 0);
			put(&b, e[i].name, nl);
			pad(&b);
		}
		unsigned mode = e[i].mode ? e[i].mode : (e[i].type == '5' ? 0755 : 0644);
		uint64_t size = e[i].claim_size ? e[i].claim_size
						: (e[i].type == '0' || e[i].type == 'x' ? dlen : 0);
		header(&b, e[i].name, e[i].type, size, e[i].link, mode, e[i].bad_checksum);
		if (e[i].type == '0' || e[i].type == 'x') {
			put(&b, data, dlen);
			pad(&b);
		}
	}
	if (!no_end) {
		static const uint8_t zero[1024];
		put(&b, zero, sizeof zero);
	}
	uint8_t *gz = rt_gzip(b.p, b.len, len);
	free(b.p);
	return gz;
}

uint8_t *rt_gzip(const uint8_t *p, size_t n, size_t *len)
{
	z_stream zs;
	memset(&zs, 0, sizeof zs);
	UT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
	size_t cap = deflateBound(&zs, (uLong)n) + 64;
	uint8_t *out = malloc(cap);
	UT_ASSERT(out);
	zs.next_in = (Bytef *)p;
	zs.avail_in = (uInt)n;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	UT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*len = cap - zs.avail_out;
	deflateEnd(&zs);
	return out;
}
