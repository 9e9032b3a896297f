/* cmd_system.c — `unifork info | health`: the daemon itself. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/output.h"

int cli_cmd_info(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv)
{
	struct cli_http_resp resp;
	int npos;

	cli_http_resp_init(&resp, 0);
	int r = cli_args_parse(c, cmd, argc, argv, NULL, NULL, NULL, NULL, 0, 0, &npos);
	if (r == 0)
		r = cli_request(c, "GET", "/v1/info", CLI_AUTH_CONTROL, NULL, NULL, 0, 0,
				CLI_TIMEOUT_DEFAULT, &resp);
	if (r == 0 && resp.status / 100 != 2)
		r = cli_api_error(c, &resp);
	if (r == 0) {
		json_t *j = cli_json_object(&resp);
		if (c->json || !j) {
			cli_print_body(&resp);
		} else {
			printf("url: %s\n", c->target.url);
			cli_print_object(stdout, j, 0);
		}
		json_decref(j);
	}
	cli_http_resp_free(&resp);
	return r == CLI_HELP_SHOWN ? CLI_EXIT_OK : r;
}

/* One probe: 1 if it answered 2xx; the reason otherwise in why[]. */
static int probe(struct cli_ctx *c, const char *path, int *exit_code, char *why, size_t cap)
{
	struct cli_http_resp resp;
	*exit_code = cli_request(c, "GET", path, CLI_AUTH_CONTROL, NULL, NULL, 0, 0,
				 CLI_TIMEOUT_DEFAULT, &resp);
	int ok = 0;
	why[0] = '\0';
	if (*exit_code == 0) {
		ok = resp.status / 100 == 2;
		json_t *j = cli_json_object(&resp);
		json_t *e = json_object_get(j, "error");
		const char *msg = json_string_value(json_object_get(e, "message"));
		const char *code = json_string_value(json_object_get(e, "code"));
		if (!ok) {
			int n = snprintf(why, cap, "HTTP %d%s%s%s%s", resp.status, code ? " " : "",
					 code ? code : "", msg ? ": " : "", msg ? msg : "");
			if (n >= (int)cap) { /* cut at a character boundary (UTF-8) */
				size_t len = strlen(why);
				while (len && ((unsigned char)why[len - 1] & 0xc0) == 0x80)
					len--;
				if (len && (unsigned char)why[len - 1] >= 0xc0)
					len--;
				why[len] = '\0';
			}
		}
		json_decref(j);
	}
	cli_http_resp_free(&resp);
	return ok;
}

int cli_cmd_health(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv)
{
	char why_live[512], why_ready[512];
	int npos, code;

	int r = cli_args_parse(c, cmd, argc, argv, NULL, NULL, NULL, NULL, 0, 0, &npos);
	if (r)
		return r == CLI_HELP_SHOWN ? CLI_EXIT_OK : r;
	int live = probe(c, "/healthz", &code, why_live, sizeof(why_live));
	if (code)
		return code;
	int ready = probe(c, "/readyz", &code, why_ready, sizeof(why_ready));
	if (code)
		return code;

	if (c->json) {
		json_t *j = json_pack("{s:s,s:b,s:b}", "url", c->target.url, "live", live,
				      "ready", ready);
		if (j && !live)
			json_object_set_new(j, "live_error", json_string(why_live));
		if (j && !ready)
			json_object_set_new(j, "ready_error", json_string(why_ready));
		char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(j);
	} else {
		printf("url:   %s\nlive:  %s", c->target.url, live ? "yes" : "no (");
		if (!live) {
			cli_put_clean(stdout, why_live, strlen(why_live), 0);
			putchar(')');
		}
		printf("\nready: %s", ready ? "yes" : "no (");
		if (!ready) {
			cli_put_clean(stdout, why_ready, strlen(why_ready), 0);
			putchar(')');
		}
		putchar('\n');
	}
	return live && ready ? CLI_EXIT_OK : CLI_EXIT_API;
}
