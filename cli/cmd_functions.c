/* cmd_functions.c — `unifork ls | get | rm | logs | pool`: the function
 * registry's read and update calls. */
#include "cli/cli.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/output.h"

/* Parse the name positional and the global options only. */
static int name_only(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv,
		     const struct cli_opt *opts, cli_opt_fn fn, void *arg, char **name)
{
	char *pos[1];
	int npos;
	int r = cli_args_parse(c, cmd, argc, argv, opts, fn, arg, pos, 1, 1, &npos);
	if (r == 0 && !*pos[0])
		r = cli_usage_error(cmd, "the function name must not be empty");
	*name = r == 0 ? pos[0] : NULL;
	return r;
}

/* GET path, print the object as "key: value" (or raw with --json). */
static int get_and_show(struct cli_ctx *c, const char *path)
{
	struct cli_http_resp resp;
	int r = cli_request(c, "GET", path, CLI_AUTH_CONTROL, NULL, NULL, 0, 0,
			    CLI_TIMEOUT_DEFAULT, &resp);
	if (r == 0 && resp.status / 100 != 2)
		r = cli_api_error(c, &resp);
	if (r == 0) {
		json_t *j = cli_json_object(&resp);
		if (c->json || !j)
			cli_print_body(&resp);
		else
			cli_print_object(stdout, j, 0);
		json_decref(j);
	}
	cli_http_resp_free(&resp);
	return r;
}

/* ---- ls ---- */

static json_t *lookup(json_t *fn, const char *key)
{
	json_t *v = json_object_get(fn, key);
	return v ? v : json_object_get(json_object_get(fn, "pool"), key);
}

int cli_cmd_ls(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv)
{
	static const char *const keys[] = { "name", "runtime", "state", "memory_mb",
					    "timeout_ms", "min_warm", "max_instances" };
	enum { NCOLS = sizeof(keys) / sizeof(keys[0]) };
	struct cli_table t = { NCOLS, { "NAME", "RUNTIME", "STATE", "MEMORY_MB", "TIMEOUT_MS",
					"MIN_WARM", "MAX_INSTANCES" }, NULL, 0, 0 };
	struct cli_http_resp resp;
	json_t *j = NULL;
	int npos;

	cli_http_resp_init(&resp, 0);
	int r = cli_args_parse(c, cmd, argc, argv, NULL, NULL, NULL, NULL, 0, 0, &npos);
	if (r == 0)
		r = cli_request(c, "GET", "/v1/functions", CLI_AUTH_CONTROL, NULL, NULL, 0, 0,
				CLI_TIMEOUT_DEFAULT, &resp);
	if (r == 0 && resp.status / 100 != 2)
		r = cli_api_error(c, &resp);
	if (r)
		goto out;
	if (c->json) {
		cli_print_body(&resp);
		goto out;
	}
	/* {"functions":[...]} or a bare array */
	j = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, NULL);
	json_t *list = json_is_array(j) ? j : json_object_get(j, "functions");
	if (!json_is_array(list)) {
		fprintf(stderr, "error: GET /v1/functions: the answer is not a list of functions\n");
		r = CLI_EXIT_API;
		goto out;
	}
	if (json_array_size(list) == 0) {
		printf("no functions deployed\n");
		goto out;
	}
	size_t i;
	json_t *fn;
	json_array_foreach(list, i, fn) {
		char *row[NCOLS] = {0};
		for (int k = 0; k < NCOLS; k++) {
			json_t *v = json_is_string(fn) && k == 0 ? fn : lookup(fn, keys[k]);
			row[k] = v ? cli_value_text(v) : NULL;
		}
		if (cli_table_add(&t, row) < 0) {
			fprintf(stderr, "error: out of memory\n");
			r = CLI_EXIT_API;
			goto out;
		}
	}
	cli_table_print(stdout, &t);
out:
	cli_table_free(&t);
	json_decref(j);
	cli_http_resp_free(&resp);
	return r == CLI_HELP_SHOWN ? CLI_EXIT_OK : r;
}

/* ---- get ---- */

int cli_cmd_get(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv)
{
	struct cli_buf path = {0};
	char *name;
	int r = name_only(c, cmd, argc, argv, NULL, NULL, NULL, &name);
	if (r == 0 && cli_fn_path(&path, name, NULL) < 0)
		r = CLI_EXIT_API;
	if (r == 0)
		r = get_and_show(c, path.data);
	cli_buf_free(&path);
	return r == CLI_HELP_SHOWN ? CLI_EXIT_OK : r;
}

/* ---- rm ---- */

int cli_cmd_rm(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv)
{
	struct cli_buf path = {0};
	struct cli_http_resp resp;
	char *name;

	cli_http_resp_init(&resp, 0);
	int r = name_only(c, cmd, argc, argv, NULL, NULL, NULL, &name);
	if (r == 0 && cli_fn_path(&path, name, NULL) < 0)
		r = CLI_EXIT_API;
	if (r == 0)
		r = cli_request(c, "DELETE", path.data, CLI_AUTH_CONTROL, NULL, NULL, 0, 0,
				CLI_TIMEOUT_DEFAULT, &resp);
	if (r == 0 && resp.status / 100 != 2)
		r = cli_api_error(c, &resp);
	if (r == 0 && c->json)
		cli_print_body(&resp); /* 204: nothing */
	else if (r == 0) {
		printf("removed ");
		cli_put_clean(stdout, name, strlen(name), 0);
		putchar('\n');
	}
	cli_http_resp_free(&resp);
	cli_buf_free(&path);
	return r == CLI_HELP_SHOWN ? CLI_EXIT_OK : r;
}

/* ---- logs ---- */

static int logs_opt(struct cli_ctx *c, const struct cli_cmd *cmd, void *arg, int id,
		    const char *val)
{
	unsigned long long v;
	if (cli_parse_uint(val, 1, 1000000, &v) < 0)
		return cli_usage_error(cmd, "--tail wants a number of lines >= 1, not '%s'", val);
	*(unsigned long long *)arg = v;
	return 0;
}

/* One NDJSON record as "TIME CALL STREAM: message". */
static void show_log_line(const char *line, size_t n)
{
	static const char *const msg_keys[] = { "message", "line", "msg", "text", "log", "output" };
	json_t *j = json_loadb(line, n, 0, NULL);
	if (!json_is_object(j)) {
		cli_put_clean(stdout, line, n, 0);
		putchar('\n');
		json_decref(j);
		return;
	}
	const char *sep = "";
	static const char *const meta[] = { "time", "ts", "call_id", "stream" };
	for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++) {
		json_t *v = json_object_get(j, meta[i]);
		if (!v)
			continue;
		char *s = cli_value_text(v);
		if (s) {
			fputs(sep, stdout);
			cli_put_clean(stdout, s, strlen(s), 0);
			sep = " ";
		}
		free(s);
	}
	json_t *m = NULL;
	for (size_t i = 0; !m && i < sizeof(msg_keys) / sizeof(msg_keys[0]); i++)
		m = json_object_get(j, msg_keys[i]);
	char *s = m ? cli_value_text(m) : json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (s) {
		fputs(*sep ? ": " : "", stdout);
		size_t len = strlen(s);
		while (len && s[len - 1] == '\n')
			len--;
		cli_put_clean(stdout, s, len, 1);
	}
	free(s);
	putchar('\n');
	json_decref(j);
}

int cli_cmd_logs(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct cli_opt opts[] = { { "--tail", 1, 0 }, { NULL, 0, 0 } };
	unsigned long long tail = 0;
	struct cli_buf path = {0};
	struct cli_http_resp resp;
	char *name;

	cli_http_resp_init(&resp, 0);
	int r = name_only(c, cmd, argc, argv, opts, logs_opt, &tail, &name);
	if (r == 0 && (cli_fn_path(&path, name, "/logs") < 0 ||
		       (tail && cli_buf_appendf(&path, "?tail=%llu", tail) < 0)))
		r = CLI_EXIT_API;
	if (r == 0)
		r = cli_request(c, "GET", path.data, CLI_AUTH_CONTROL, NULL, NULL, 0, 0,
				CLI_TIMEOUT_DEFAULT, &resp);
	if (r == 0 && resp.status / 100 != 2)
		r = cli_api_error(c, &resp);
	if (r == 0 && c->json) {
		cli_print_body(&resp);
	} else if (r == 0) {
		const char *s = resp.body.data ? resp.body.data : "", *end = s + resp.body.len;
		while (s < end) {
			const char *nl = memchr(s, '\n', (size_t)(end - s));
			size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
			if (n && s[n - 1] == '\r')
				n--;
			if (n)
				show_log_line(s, n);
			s = nl ? nl + 1 : end;
		}
	}
	cli_http_resp_free(&resp);
	cli_buf_free(&path);
	return r == CLI_HELP_SHOWN ? CLI_EXIT_OK : r;
}

/* ---- pool ---- */

enum { P_MIN, P_MAX, P_IDLE };

static int pool_opt(struct cli_ctx *c, const struct cli_cmd *cmd, void *arg, int id,
		    const char *val)
{
	static const char *const keys[] = { "min_warm", "max_instances", "idle_timeout_s" };
	static const char *const names[] = { "--min-warm", "--max", "--idle-timeout" };
	unsigned long long v;
	if (cli_parse_uint(val, id == P_MAX ? 1 : 0, UINT32_MAX, &v) < 0)
		return cli_usage_error(cmd, "%s wants a whole number%s, not '%s'", names[id],
				       id == P_MAX ? " >= 1" : "", val);
	json_object_set_new(arg, keys[id], json_integer((json_int_t)v));
	return 0;
}

int cli_cmd_pool(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct cli_opt opts[] = {
		{ "--min-warm", 1, P_MIN },
		{ "--max", 1, P_MAX },
		{ "--max-instances", 1, P_MAX },
		{ "--idle-timeout", 1, P_IDLE },
		{ NULL, 0, 0 },
	};
	json_t *knobs = json_object();
	struct cli_buf path = {0};
	struct cli_http_resp resp;
	char *name, *body = NULL;

	cli_http_resp_init(&resp, 0);
	int r = knobs ? name_only(c, cmd, argc, argv, opts, pool_opt, knobs, &name) : CLI_EXIT_API;
	if (r == 0 && json_object_size(knobs) == 0)
		r = cli_usage_error(cmd, "give at least one of --min-warm, --max, --idle-timeout");
	if (r == 0 && (cli_fn_path(&path, name, "/pool") < 0 ||
		       !(body = json_dumps(knobs, JSON_COMPACT | JSON_PRESERVE_ORDER))))
		r = CLI_EXIT_API;
	if (r == 0)
		r = cli_request(c, "PUT", path.data, CLI_AUTH_CONTROL, "application/json", body,
				strlen(body), 1, CLI_TIMEOUT_DEFAULT, &resp);
	if (r == 0 && resp.status / 100 != 2)
		r = cli_api_error(c, &resp);
	if (r == 0) {
		json_t *j = cli_json_object(&resp);
		if (c->json) {
			cli_print_body(&resp);
		} else {
			printf("pool of ");
			cli_put_clean(stdout, name, strlen(name), 0);
			printf(" updated\n");
			if (j)
				cli_print_object(stdout, j, 1);
		}
		json_decref(j);
	}
	free(body);
	json_decref(knobs);
	cli_http_resp_free(&resp);
	cli_buf_free(&path);
	return r == CLI_HELP_SHOWN ? CLI_EXIT_OK : r;
}
