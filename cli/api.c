/* api.c — requests to runtimed and the messages for what can go wrong. */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/http.h"
#include "cli/output.h"
#include "vmm/err.h"

int cli_fn_path(struct cli_buf *out, const char *name, const char *suffix)
{
	int r = cli_buf_append(out, "/v1/functions/", 14);
	if (r == 0)
		r = cli_http_path_escape(out, name);
	if (r == 0 && suffix)
		r = cli_buf_append(out, suffix, strlen(suffix));
	return r;
}

int cli_request(struct cli_ctx *c, const char *method, const char *path, enum cli_auth auth,
		const char *ctype, const void *body, size_t len, int has_body,
		double default_timeout, struct cli_http_resp *resp)
{
	cli_http_resp_init(resp, CLI_MAX_BODY);
	if (!c->target.url[0] && cli_target_parse(c->url_flag, &c->target) < 0) {
		fprintf(stderr, "error: --url/UNIFORK_LISTEN: %s\n", vmm_strerror());
		return CLI_EXIT_USAGE;
	}

	char token[CLI_TOKEN_MAX + 1], file[4200];
	enum cli_token_src src;
	if (cli_token_resolve(c->token_flag, token, sizeof(token), file, sizeof(file), &src) < 0) {
		fprintf(stderr, "error: %s\n", vmm_strerror());
		return CLI_EXIT_USAGE;
	}
	int send_token = src != CLI_TOKEN_NONE &&
			 (auth == CLI_AUTH_CONTROL || src != CLI_TOKEN_FILE);

	struct cli_http_req req = {
		.method = method,
		.path = path,
		.token = send_token ? token : NULL,
		.ctype = ctype,
		.accept = auth == CLI_AUTH_CONTROL ? "application/json" : NULL,
		.body = body,
		.body_len = len,
		.has_body = has_body,
	};
	double tmo = c->timeout_s > 0 ? c->timeout_s : default_timeout;
	int connected;
	int r = cli_http_do(&c->target, &req, tmo, resp, &connected);
	if (r == 0)
		return CLI_EXIT_OK;
	if (!connected && r == -ECONNREFUSED)
		fprintf(stderr, "error: cannot reach runtimed at %s (is it running? make run)\n",
			c->target.url);
	else if (!connected)
		fprintf(stderr, "error: cannot reach runtimed at %s: %s\n", c->target.url,
			vmm_strerror());
	else
		fprintf(stderr, "error: %s %s: %s\n", method, c->target.url, vmm_strerror());
	return CLI_EXIT_CONNECT;
}

json_t *cli_json_object(const struct cli_http_resp *resp)
{
	if (resp->body.len == 0)
		return NULL;
	json_t *j = json_loadb(resp->body.data, resp->body.len, 0, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int cli_api_error(struct cli_ctx *c, const struct cli_http_resp *resp)
{
	if (resp->status == 401) {
		const char *data = getenv("UNIFORK_DATA");
		fprintf(stderr, "error: bad or missing token (UNIFORK_TOKEN / %s%s)\n",
			data && *data ? data : "var", "/token");
		return CLI_EXIT_API;
	}
	json_t *j = cli_json_object(resp);
	json_t *e = j ? json_object_get(j, "error") : NULL;
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	fputs("error: ", stderr);
	if (code) {
		cli_put_clean(stderr, code, strlen(code), 0);
		fputs(": ", stderr);
		if (msg)
			cli_put_clean(stderr, msg, strlen(msg), 0);
		else
			fprintf(stderr, "HTTP %d", resp->status);
	} else {
		/* Not our error format (a proxy, an old server): status and the start of the body. */
		fprintf(stderr, "HTTP %d", resp->status);
		if (resp->reason && *resp->reason) {
			fputc(' ', stderr);
			cli_put_clean(stderr, resp->reason, strlen(resp->reason), 0);
		}
		size_t n = strcspn(resp->body.data ? resp->body.data : "", "\r\n");
		if (n) {
			fputs(": ", stderr);
			cli_put_clean(stderr, resp->body.data, n < 200 ? n : 200, 0);
		}
	}
	const char *retry = cli_http_header(resp, "retry-after");
	if (resp->status == 429 && retry) {
		fputs(" (retry after ", stderr);
		cli_put_clean(stderr, retry, strlen(retry), 0);
		fputs(" s)", stderr);
	}
	fputc('\n', stderr);
	json_decref(j);
	return CLI_EXIT_API;
}
