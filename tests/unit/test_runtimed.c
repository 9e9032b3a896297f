/* test_runtimed.c — runtimed's pieces that need no VM: function specs and
 * their JSON, the on-disk registry, the log ring, metrics, configuration. */
#include "runtimed/config.h"
#include "runtimed/logs.h"
#include "runtimed/metrics.h"
#include "runtimed/registry.h"
#include "runtimed/spec.h"
#include "tests/unit/ut.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct gw_env_var env2[] = {{"GREETING", "hej\nthere"}, {"B_2", ""}};

static struct gw_function_spec gw_spec(const char *name)
{
	return (struct gw_function_spec){
		.name = name, .runtime = GW_RUNTIME_PYTHON, .runtime_name = "python",
		.handler = "handler.handle", .code = (const uint8_t *)"CODE", .code_len = 4,
		.memory_mb = 96, .timeout_ms = 1500, .env = env2, .n_env = 2,
		.pool = {.min_warm = 1, .max_instances = 3, .idle_timeout_s = 60},
	};
}

static char *tmpdir(void)
{
	static char d[64];
	snprintf(d, sizeof(d), "/tmp/uf-rt-test.XXXXXX");
	UT_ASSERT(mkdtemp(d));
	return d;
}

UT_TEST(rt_spec_json_roundtrip)
{
	struct gw_function_spec g = gw_spec("fn-1");
	struct rt_spec a, b;
	UT_EQ(rt_spec_from_gw(&a, &g), 0);
	a.version = 7;
	json_t *j = rt_spec_to_json(&a);
	UT_ASSERT(j);
	char err[128];
	UT_EQ(rt_spec_from_json(&b, j, err, sizeof(err)), 0);
	json_decref(j);
	UT_ASSERT(strcmp(b.name, "fn-1") == 0 && strcmp(b.runtime, "python") == 0);
	UT_ASSERT(strcmp(b.handler, "handler.handle") == 0);
	UT_EQ(b.memory_mb, 96);
	UT_EQ(b.timeout_ms, 1500);
	UT_EQ(b.pool.min_warm, 1);
	UT_EQ(b.pool.max_instances, 3);
	UT_EQ(b.pool.idle_timeout_s, 60);
	UT_EQ(b.version, 7);
	UT_EQ(b.n_env, 2);
	char **e = rt_spec_env_strings(&b);
	UT_ASSERT(e);
	int seen = 0;
	for (size_t i = 0; i < b.n_env; i++)
		seen |= (strcmp(e[i], "GREETING=hej\nthere") == 0) | (strcmp(e[i], "B_2=") == 0) << 1;
	UT_EQ(seen, 3);
	rt_spec_env_free(e, b.n_env);
	rt_spec_free(&a);
	rt_spec_free(&b);
}

UT_TEST(rt_spec_json_refuses_damage)
{
	static const char *const bad[] = {
		"{\"name\":\"Bad\",\"runtime\":\"python\",\"handler\":\"h\",\"memory_mb\":128,\"timeout_ms\":1,\"env\":{},\"pool\":{\"min_warm\":0,\"max_instances\":1,\"idle_timeout_s\":0},\"version\":1}",
		"{\"name\":\"ok\",\"runtime\":\"java\",\"handler\":\"h\",\"memory_mb\":128,\"timeout_ms\":1,\"env\":{},\"pool\":{\"min_warm\":0,\"max_instances\":1,\"idle_timeout_s\":0},\"version\":1}",
		"{\"name\":\"ok\",\"runtime\":\"python\",\"handler\":\"h\",\"memory_mb\":8,\"timeout_ms\":1,\"env\":{},\"pool\":{\"min_warm\":0,\"max_instances\":1,\"idle_timeout_s\":0},\"version\":1}",
		"{\"name\":\"ok\",\"runtime\":\"python\",\"handler\":\"h\",\"memory_mb\":128,\"timeout_ms\":1,\"env\":{},\"pool\":{\"min_warm\":2,\"max_instances\":1,\"idle_timeout_s\":0},\"version\":1}",
		"{\"name\":\"ok\",\"runtime\":\"python\",\"handler\":\"h\",\"memory_mb\":128,\"timeout_ms\":1,\"env\":{\"A=B\":\"x\"},\"pool\":{\"min_warm\":0,\"max_instances\":1,\"idle_timeout_s\":0},\"version\":1}",
		"{\"name\":\"ok\",\"runtime\":\"python\",\"handler\":\"h\",\"memory_mb\":128,\"timeout_ms\":1,\"env\":{},\"version\":1}",
		"[1,2]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *j = json_loads(bad[i], 0, NULL);
		UT_ASSERT(j);
		struct rt_spec s;
		char err[128] = "";
		if (rt_spec_from_json(&s, j, err, sizeof(err)) == 0)
			UT_FAIL("case %zu accepted", i);
		UT_ASSERT(err[0]);
		json_decref(j);
	}
	UT_ASSERT(rt_spec_name_ok("a-b_c9"));
	UT_ASSERT(!rt_spec_name_ok("-a"));
	UT_ASSERT(!rt_spec_name_ok(""));
	UT_ASSERT(!rt_spec_name_ok("../x"));
}

static int nfound;
static char found[4][96];

static void collect(void *arg, struct rt_spec *s)
{
	(void)arg;
	if (nfound < 4)
		snprintf(found[nfound++], 96, "%s:%llu", s->name, (unsigned long long)s->version);
	rt_spec_free(s);
}

static void read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	UT_ASSERT(fd >= 0);
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	UT_ASSERT(n >= 0);
	buf[n] = 0;
}

UT_TEST(rt_registry_stage_commit_load_remove)
{
	char *data = tmpdir(), p[PATH_MAX], st[PATH_MAX], st2[PATH_MAX], buf[256];
	struct rt_registry r;
	UT_EQ(rt_reg_init(&r, data), 0);
	struct gw_function_spec g = gw_spec("alpha");
	struct rt_spec s;
	UT_EQ(rt_spec_from_gw(&s, &g), 0);
	s.version = 1;
	UT_EQ(rt_reg_stage(&r, &s, "v1code", 6, st), 0);
	UT_ASSERT(strstr(st, "/.staging-alpha-"));
	UT_EQ(rt_reg_commit(&r, "alpha", st), 0);
	UT_ASSERT(access(st, F_OK) != 0);
	UT_EQ(rt_reg_path(&r, "alpha", "code.tar.gz", p, sizeof(p)), 0);
	read_file(p, buf, sizeof(buf));
	UT_ASSERT(strcmp(buf, "v1code") == 0);
	UT_EQ(rt_reg_path(&r, "alpha", "env", p, sizeof(p)), 0);
	struct stat sb;
	UT_EQ(stat(p, &sb), 0);
	UT_EQ(sb.st_size, (off_t)strlen("GREETING=hej\nthere") + 1 + strlen("B_2=") + 1);

	/* An update swaps the whole directory. */
	s.version = 2;
	UT_EQ(rt_reg_stage(&r, &s, "v2code", 6, st2), 0);
	UT_EQ(rt_reg_commit(&r, "alpha", st2), 0);
	UT_ASSERT(access(st2, F_OK) != 0);
	UT_EQ(rt_reg_path(&r, "alpha", "code.tar.gz", p, sizeof(p)), 0);
	read_file(p, buf, sizeof(buf));
	UT_ASSERT(strcmp(buf, "v2code") == 0);

	/* A damaged function is skipped at load; leftovers are cleaned. */
	snprintf(p, sizeof(p), "%s/functions/broken", data);
	UT_EQ(mkdir(p, 0700), 0);
	UT_EQ(rt_write_atomic(p, "spec.json", "{not json", 9), 0);
	snprintf(p, sizeof(p), "%s/functions/.staging-x-123456", data);
	UT_EQ(mkdir(p, 0700), 0);
	UT_EQ(rt_reg_init(&r, data), 0);
	UT_ASSERT(access(p, F_OK) != 0);
	nfound = 0;
	UT_EQ(rt_reg_load(&r, collect, NULL), 1);
	UT_ASSERT(strcmp(found[0], "alpha:2") == 0);

	/* Pool changes rewrite spec.json in place. */
	s.pool.max_instances = 9;
	UT_EQ(rt_reg_save_spec(&r, &s), 0);
	UT_EQ(rt_reg_path(&r, "alpha", "spec.json", p, sizeof(p)), 0);
	char big[4096];
	read_file(p, big, sizeof(big));
	UT_ASSERT(strstr(big, "\"max_instances\": 9"));

	UT_EQ(rt_reg_remove(&r, "alpha"), 0);
	UT_EQ(rt_reg_path(&r, "alpha", NULL, p, sizeof(p)), 0);
	UT_ASSERT(access(p, F_OK) != 0);
	nfound = 0;
	UT_EQ(rt_reg_load(&r, collect, NULL), 0);
	UT_ASSERT(rt_reg_remove(&r, "alpha") < 0);
	rt_spec_free(&s);
	snprintf(p, sizeof(p), "%s/functions/broken", data);
	rt_reg_discard(data);
	UT_ASSERT(access(data, F_OK) != 0);
}

UT_TEST(rt_logs_ring)
{
	struct rt_logs l;
	UT_EQ(rt_logs_init(&l), 0);
	rt_logs_add(&l, "c1", "handler", "one\ntwo\r\nthree", 14);
	char *out;
	size_t len;
	UT_EQ(rt_logs_ndjson(&l, 2, &out, &len), 0);
	/* The newest two, oldest first, one JSON object a line. */
	char *nl = strchr(out, '\n');
	UT_ASSERT(nl && strchr(nl + 1, '\n') == out + len - 1);
	UT_ASSERT(strstr(out, "\"line\":\"two\"") && strstr(out, "\"line\":\"three\""));
	UT_ASSERT(strstr(out, "\"line\":\"two\"") < strstr(out, "\"line\":\"three\""));
	UT_ASSERT(!strstr(out, "\"one\""));
	UT_ASSERT(strstr(out, "\"call_id\":\"c1\"") && strstr(out, "\"stream\":\"handler\""));
	free(out);
	/* Invalid UTF-8 and control bytes come out as valid JSON. */
	rt_logs_add(&l, "c2", "handler", "bad \xff\xfe byte", 11);
	UT_EQ(rt_logs_ndjson(&l, 1, &out, &len), 0);
	json_t *j = json_loadb(out, len, 0, NULL);
	UT_ASSERT(j);
	UT_ASSERT(strcmp(json_string_value(json_object_get(j, "line")), "bad ?? byte") == 0);
	json_decref(j);
	free(out);
	/* Bounded: lines and bytes. */
	for (unsigned i = 0; i < RT_LOGS_LINES + 10; i++)
		rt_logs_add(&l, "c3", "handler", "x", 1);
	UT_EQ(l.count, RT_LOGS_LINES);
	static char huge[RT_LOGS_LINE_MAX * 3];
	memset(huge, 'y', sizeof(huge));
	for (int i = 0; i < 200; i++)
		rt_logs_add(&l, "c4", "handler", huge, sizeof(huge));
	UT_ASSERT(l.bytes <= RT_LOGS_BYTES);
	UT_EQ(rt_logs_ndjson(&l, 1, &out, &len), 0);
	UT_ASSERT(len > RT_LOGS_LINE_MAX && len < RT_LOGS_LINE_MAX + 200);
	free(out);
	rt_logs_free(&l);
}

UT_TEST(rt_metrics_counts_and_text)
{
	struct rt_fmetrics m;
	memset(&m, 0, sizeof(m));
	for (int i = 1; i <= 100; i++)
		rt_metrics_invocation(&m, 200, RT_START_CLONE, (uint64_t)i * 1000, 5000, 10);
	rt_metrics_invocation(&m, 504, RT_START_WARM, 3000000, 0, 0);
	rt_metrics_invocation(&m, 429, -1, 0, 0, 0);
	m.throttled[RT_THROTTLE_MAX_INSTANCES] = 1;
	UT_EQ(rt_metrics_total(&m), 102);
	UT_EQ(m.duration.count, 101);
	UT_EQ(m.restore.count, 100);
	json_t *lat = rt_metrics_latency_json(&m);
	UT_ASSERT(lat);
	/* 101 samples: 1..100 ms and one of 3000 ms. */
	UT_ASSERT(json_real_value(json_object_get(lat, "p50_ms")) == 51.0);
	UT_ASSERT(json_real_value(json_object_get(lat, "p99_ms")) == 100.0);
	json_decref(lat);
	struct gw_buf b;
	gw_buf_init(&b);
	struct rt_pool_gauges g = {.live = 3, .warm = 1, .busy = 2, .inflight = 2};
	rt_metrics_write(&b, "fn", &m, &g, 1);
	gw_buf_append(&b, "", 1);
	UT_EQ(gw_buf_error(&b), 0);
	UT_ASSERT(strstr(b.data, "# TYPE uf_invocations_total counter\n"));
	UT_ASSERT(strstr(b.data, "uf_invocations_total{function=\"fn\",code=\"200\"} 100\n"));
	UT_ASSERT(strstr(b.data, "uf_invocations_total{function=\"fn\",code=\"429\"} 1\n"));
	UT_ASSERT(strstr(b.data, "uf_invocation_duration_seconds_bucket{function=\"fn\",le=\"0.01\"} 10\n"));
	UT_ASSERT(strstr(b.data, "uf_invocation_duration_seconds_count{function=\"fn\"} 101\n"));
	UT_ASSERT(strstr(b.data, "uf_starts_total{function=\"fn\",type=\"warm\"} 1\n"));
	UT_ASSERT(strstr(b.data, "uf_throttled_total{function=\"fn\",reason=\"max_instances\"} 1\n"));
	UT_ASSERT(strstr(b.data, "uf_pool_instances{function=\"fn\",state=\"busy\"} 2\n"));
	gw_buf_free(&b);
}

UT_TEST(rt_config_env_flags_token)
{
	char *data = tmpdir(), *argv[8], k[PATH_MAX], w[PATH_MAX];
	/* Stand-in artifacts: any readable files do for parsing and hashing. */
	snprintf(k, sizeof(k), "%s/vmlinux", data);
	snprintf(w, sizeof(w), "%s/uf-worker", data);
	UT_EQ(rt_write_atomic(data, "vmlinux", "kernel", 6), 0);
	UT_EQ(rt_write_atomic(data, "uf-worker", "worker", 6), 0);
	setenv("UNIFORK_LISTEN", "127.0.0.1:9999", 1);
	setenv("UNIFORK_DATA", "/nonexistent-by-env", 1);
	setenv("UNIFORK_KERNEL", k, 1);
	setenv("UNIFORK_INITRD", k, 1);
	setenv("UNIFORK_WORKER", w, 1);
	unsetenv("UNIFORK_TOKEN");
	char dflag[PATH_MAX + 8];
	snprintf(dflag, sizeof(dflag), "--data=%s/var", data);
	int n = 0;
	argv[n++] = "runtimed";
	argv[n++] = dflag;
	argv[n++] = "--cpus";
	argv[n++] = "3";
	argv[n] = NULL;
	struct rt_config *c = calloc(1, sizeof(*c));
	UT_ASSERT(c);
	UT_EQ(rt_config_parse(c, n, argv), 0);
	UT_ASSERT(strcmp(c->listen, "127.0.0.1:9999") == 0);     /* from the environment */
	UT_ASSERT(strstr(c->data, "/var") && !strstr(c->data, "nonexistent")); /* flag wins */
	UT_EQ(c->cpus, 3);
	UT_EQ(rt_config_prepare(c), 0);
	UT_EQ(strlen(c->token), 2 * RT_TOKEN_BYTES);
	char tp[PATH_MAX + 8];
	snprintf(tp, sizeof(tp), "%s/token", c->data);
	struct stat sb;
	UT_EQ(stat(tp, &sb), 0);
	UT_EQ(sb.st_mode & 0777, 0600);
	UT_ASSERT(snap_hash_known(c->origin.kernel));
	/* A second start reuses the token; UNIFORK_TOKEN overrides it. */
	char first[256];
	snprintf(first, sizeof(first), "%s", c->token);
	UT_EQ(rt_config_parse(c, n, argv), 0);
	UT_EQ(rt_config_prepare(c), 0);
	UT_ASSERT(strcmp(first, c->token) == 0);
	setenv("UNIFORK_TOKEN", "given", 1);
	UT_EQ(rt_config_parse(c, n, argv), 0);
	UT_EQ(rt_config_prepare(c), 0);
	UT_ASSERT(strcmp(c->token, "given") == 0);
	char *bad[] = {"runtimed", "--cpus", "zero", NULL};
	UT_ASSERT(rt_config_parse(c, 3, bad) < 0);
	free(c);
	rt_reg_discard(data);
}

UT_TEST(rt_registry_recovers_interrupted_swaps)
{
	char *data = tmpdir(), p[PATH_MAX], q[PATH_MAX];
	struct rt_registry r;
	UT_EQ(rt_reg_init(&r, data), 0);
	/* A swap that moved "beta" aside and died before moving the new one
	 * in: the old version comes back. */
	snprintf(p, sizeof(p), "%s/functions/beta.old-Ab12Cd", data);
	UT_EQ(mkdir(p, 0700), 0);
	UT_EQ(rt_write_atomic(p, "code.tar.gz", "old", 3), 0);
	/* One that got as far as the new one: the aside copy goes. */
	snprintf(q, sizeof(q), "%s/functions/gamma", data);
	UT_EQ(mkdir(q, 0700), 0);
	snprintf(q, sizeof(q), "%s/functions/gamma.old-Zz99Yy", data);
	UT_EQ(mkdir(q, 0700), 0);
	/* Inside a function: an interrupted template swap and a rebuilt
	 * template that never moved in. */
	snprintf(p, sizeof(p), "%s/functions/gamma/template.old-Qq11Ww", data);
	UT_EQ(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/functions/gamma/template.new", data);
	UT_EQ(mkdir(p, 0700), 0);
	UT_EQ(rt_reg_init(&r, data), 0);
	snprintf(p, sizeof(p), "%s/functions/beta/code.tar.gz", data);
	UT_EQ(access(p, F_OK), 0);
	snprintf(p, sizeof(p), "%s/functions/beta.old-Ab12Cd", data);
	UT_ASSERT(access(p, F_OK) != 0);
	UT_ASSERT(access(q, F_OK) != 0);
	snprintf(p, sizeof(p), "%s/functions/gamma/template", data);
	UT_EQ(access(p, F_OK), 0);
	snprintf(p, sizeof(p), "%s/functions/gamma/template.new", data);
	UT_ASSERT(access(p, F_OK) != 0);
	/* rt_swap_dir replaces a directory holding files. */
	char a[256], b[256];
	snprintf(a, sizeof(a), "%s/a", data);
	snprintf(b, sizeof(b), "%s/b", data);
	UT_EQ(mkdir(a, 0700), 0);
	UT_EQ(mkdir(b, 0700), 0);
	UT_EQ(rt_write_atomic(a, "f", "new", 3), 0);
	UT_EQ(rt_write_atomic(b, "f", "old", 3), 0);
	UT_EQ(rt_swap_dir(a, b), 0);
	UT_ASSERT(access(a, F_OK) != 0);
	char buf[16];
	snprintf(p, sizeof(p), "%s/f", b);
	read_file(p, buf, sizeof(buf));
	UT_ASSERT(strcmp(buf, "new") == 0);
	rt_reg_discard(data);
}
