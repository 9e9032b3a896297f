/* cmd_deploy.c — `unifork deploy`: pack the code, PUT /v1/functions/NAME. */
#include "cli/cli.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/output.h"
#include "cli/pack.h"
#include "vmm/err.h"

enum { O_RUNTIME, O_HANDLER, O_MEMORY, O_TIMEOUT, O_ENV, O_MIN_WARM, O_MAX, O_IDLE };

static const struct cli_opt deploy_opts[] = {
	{ "--runtime", 1, O_RUNTIME },
	{ "--handler", 1, O_HANDLER },
	{ "--memory", 1, O_MEMORY },
	{ "--timeout", 1, O_TIMEOUT },
	{ "--env", 1, O_ENV },
	{ "--min-warm", 1, O_MIN_WARM },
	{ "--max-instances", 1, O_MAX },
	{ "--idle-timeout", 1, O_IDLE },
	{ NULL, 0, 0 },
};

struct deploy {
	json_t *spec; /* everything but the code */
	json_t *pool;
	json_t *env;
	const char *runtime;
};

static int set_uint(const struct cli_cmd *cmd, json_t *obj, const char *key, const char *opt,
		    const char *val, unsigned long long min, unsigned long long max)
{
	unsigned long long v;
	if (cli_parse_uint(val, min, max, &v) < 0)
		return cli_usage_error(cmd, "%s wants a whole number in [%llu, %llu], not '%s'", opt,
				       min, max, val);
	json_object_set_new(obj, key, json_integer((json_int_t)v));
	return 0;
}

static int set_str(const struct cli_cmd *cmd, json_t *obj, const char *key, const char *opt,
		   const char *val)
{
	if (!*val)
		return cli_usage_error(cmd, "%s must not be empty", opt);
	json_t *s = json_string(val);
	if (!s)
		return cli_usage_error(cmd, "%s: not valid UTF-8", opt);
	json_object_set_new(obj, key, s);
	return 0;
}

static int deploy_opt(struct cli_ctx *c, const struct cli_cmd *cmd, void *arg, int id,
		      const char *val)
{
	struct deploy *d = arg;
	switch (id) {
	case O_RUNTIME:
		d->runtime = val;
		return set_str(cmd, d->spec, "runtime", "--runtime", val);
	case O_HANDLER:
		return set_str(cmd, d->spec, "handler", "--handler", val);
	case O_MEMORY:
		return set_uint(cmd, d->spec, "memory_mb", "--memory", val, 1, UINT32_MAX);
	case O_TIMEOUT:
		return set_uint(cmd, d->spec, "timeout_ms", "--timeout", val, 1, UINT32_MAX);
	case O_MIN_WARM:
		return set_uint(cmd, d->pool, "min_warm", "--min-warm", val, 0, UINT32_MAX);
	case O_MAX:
		return set_uint(cmd, d->pool, "max_instances", "--max-instances", val, 1, UINT32_MAX);
	case O_IDLE:
		return set_uint(cmd, d->pool, "idle_timeout_s", "--idle-timeout", val, 0, UINT32_MAX);
	case O_ENV: {
		const char *eq = strchr(val, '=');
		if (!eq || eq == val)
			return cli_usage_error(cmd, "--env wants KEY=VALUE, not '%s'", val);
		char key[256];
		if ((size_t)(eq - val) >= sizeof(key))
			return cli_usage_error(cmd, "--env: name too long");
		memcpy(key, val, (size_t)(eq - val));
		key[eq - val] = '\0';
		json_t *s = json_string(eq + 1);
		if (!s)
			return cli_usage_error(cmd, "--env %s: the value is not valid UTF-8", key);
		json_object_set_new(d->env, key, s); /* the last one wins */
		return 0;
	}
	}
	return cli_usage_error(cmd, "internal: unknown option id %d", id);
}

/* The request body: the spec's JSON with "code":"<base64>" appended, so the
 * (possibly large) package is encoded once, straight into the body. */
static int build_body(json_t *spec, const struct cli_buf *pkg, struct cli_buf *body)
{
	char *s = json_dumps(spec, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!s)
		return -ENOMEM;
	size_t n = strlen(s); /* "{...}" */
	int r = cli_buf_append(body, s, n - 1);
	free(s);
	if (r == 0 && json_object_size(spec))
		r = cli_buf_append(body, ",", 1);
	if (r == 0)
		r = cli_buf_append(body, "\"code\":\"", 8);
	if (r == 0)
		r = cli_base64_encode(pkg->data, pkg->len, body);
	if (r == 0)
		r = cli_buf_append(body, "\"}", 2);
	return r;
}

static void show_size(char *out, size_t cap, unsigned long long n)
{
	if (n < 10240)
		snprintf(out, cap, "%llu B", n);
	else if (n < 10ull << 20)
		snprintf(out, cap, "%.1f KiB", (double)n / 1024);
	else
		snprintf(out, cap, "%.1f MiB", (double)n / (1 << 20));
}

int cli_cmd_deploy(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv)
{
	struct deploy d = { json_object(), json_object(), json_object(), NULL };
	struct cli_buf pkg = {0}, body = {0}, path = {0};
	struct cli_http_resp resp;
	char *pos[2];
	int npos, r;

	cli_http_resp_init(&resp, 0);
	if (!d.spec || !d.pool || !d.env) {
		fprintf(stderr, "error: out of memory\n");
		r = CLI_EXIT_API;
		goto out;
	}
	r = cli_args_parse(c, cmd, argc, argv, deploy_opts, deploy_opt, &d, pos, 2, 2, &npos);
	if (r)
		goto out;
	if (!*pos[0]) {
		r = cli_usage_error(cmd, "the function name must not be empty");
		goto out;
	}
	if (!d.runtime) {
		r = cli_usage_error(cmd, "--runtime is required (native, python or exec)");
		goto out;
	}
	if (json_object_size(d.env))
		json_object_set(d.spec, "env", d.env);
	if (json_object_size(d.pool))
		json_object_set(d.spec, "pool", d.pool);

	struct cli_pack_stats st;
	if (cli_pack_path(pos[1], &pkg, &st) < 0) {
		fprintf(stderr, "error: deploy: %s\n", vmm_strerror());
		r = CLI_EXIT_USAGE;
		goto out;
	}
	if (build_body(d.spec, &pkg, &body) < 0 || cli_fn_path(&path, pos[0], NULL) < 0) {
		fprintf(stderr, "error: out of memory\n");
		r = CLI_EXIT_API;
		goto out;
	}
	char in[32], gz[32];
	show_size(in, sizeof(in), st.bytes_in);
	show_size(gz, sizeof(gz), st.bytes_out);
	if (c->verbose || isatty(STDERR_FILENO)) {
		if (st.prebuilt)
			fprintf(stderr, "deploying %s: package %s (%s), waiting for its template...\n",
				pos[0], pos[1], gz);
		else
			fprintf(stderr, "deploying %s: %u files, %s packed to %s, waiting for its "
				"template...\n", pos[0], st.files, in, gz);
	}

	cli_http_resp_free(&resp);
	r = cli_request(c, "PUT", path.data, CLI_AUTH_CONTROL, "application/json", body.data,
			body.len, 1, CLI_TIMEOUT_DEPLOY, &resp);
	if (r)
		goto out;
	if (resp.status / 100 != 2) {
		r = cli_api_error(c, &resp);
		goto out;
	}
	if (c->json) {
		cli_print_body(&resp);
	} else {
		printf("%s ", resp.status == 201 ? "created" : "updated");
		cli_put_clean(stdout, pos[0], strlen(pos[0]), 0);
		printf(" (%s runtime, %s package)\n", d.runtime, gz);
	}
out:
	cli_http_resp_free(&resp);
	cli_buf_free(&pkg);
	cli_buf_free(&body);
	cli_buf_free(&path);
	json_decref(d.spec);
	json_decref(d.pool);
	json_decref(d.env);
	return r == CLI_HELP_SHOWN ? CLI_EXIT_OK : r;
}
