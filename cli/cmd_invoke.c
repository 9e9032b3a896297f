/* cmd_invoke.c — `unifork invoke`: POST the event, print the handler's answer. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/output.h"

enum { O_DATA, O_CTYPE };

static const struct cli_opt invoke_opts[] = {
	{ "--data", 1, O_DATA },
	{ "-d", 1, O_DATA },
	{ "--content-type", 1, O_CTYPE },
	{ NULL, 0, 0 },
};

struct invoke {
	const char *data;
	const char *ctype;
};

static int invoke_opt(struct cli_ctx *c, const struct cli_cmd *cmd, void *arg, int id,
		      const char *val)
{
	struct invoke *iv = arg;
	if (id == O_DATA) {
		iv->data = val;
		return 0;
	}
	for (const char *p = val; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return cli_usage_error(cmd, "--content-type holds a control character");
	if (!*val)
		return cli_usage_error(cmd, "--content-type must not be empty");
	iv->ctype = val;
	return 0;
}

/* Read all of fd (at most CLI_MAX_BODY bytes) into out. */
static int read_all(int fd, const char *what, struct cli_buf *out)
{
	for (;;) {
		if (out->len > CLI_MAX_BODY) {
			fprintf(stderr, "error: invoke: %s is larger than %u MiB\n", what,
				CLI_MAX_BODY >> 20);
			return CLI_EXIT_USAGE;
		}
		if (cli_buf_reserve(out, 65536) < 0) {
			fprintf(stderr, "error: invoke: %s: out of memory\n", what);
			return CLI_EXIT_USAGE;
		}
		ssize_t n = read(fd, out->data + out->len, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "error: invoke: %s: %s\n", what, strerror(errno));
			return CLI_EXIT_USAGE;
		}
		if (n == 0)
			return 0;
		out->len += (size_t)n;
		out->data[out->len] = '\0';
	}
}

/* --data @FILE | - | STRING */
static int load_event(const struct cli_cmd *cmd, const char *data, struct cli_buf *ev)
{
	if (!data)
		return 0;
	if (strcmp(data, "-") == 0)
		return read_all(STDIN_FILENO, "standard input", ev);
	if (data[0] != '@')
		return cli_buf_append(ev, data, strlen(data)) < 0 ? CLI_EXIT_USAGE : 0;
	if (!data[1])
		return cli_usage_error(cmd, "--data @FILE needs a file name");
	int fd = open(data + 1, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "error: invoke: %s: %s\n", data + 1, strerror(errno));
		return CLI_EXIT_USAGE;
	}
	int r = read_all(fd, data + 1, ev);
	close(fd);
	return r;
}

static void show_head(const struct cli_http_resp *resp)
{
	fprintf(stderr, "< HTTP/1.%d %d ", resp->minor, resp->status);
	cli_put_clean(stderr, resp->reason, strlen(resp->reason), 0);
	fputc('\n', stderr);
	for (size_t i = 0; i < resp->nhdrs; i++) {
		fputs("< ", stderr);
		cli_put_clean(stderr, resp->hdrs[i].name, strlen(resp->hdrs[i].name), 0);
		fputs(": ", stderr);
		cli_put_clean(stderr, resp->hdrs[i].value, strlen(resp->hdrs[i].value), 0);
		fputc('\n', stderr);
	}
}

/* Is this body the runtime's own error ({"error":{"code":...}}) rather
 * than whatever the handler answered? */
static int is_runtime_error(const struct cli_http_resp *resp)
{
	json_t *j = cli_json_object(resp);
	int yes = json_is_string(json_object_get(json_object_get(j, "error"), "code"));
	json_decref(j);
	return yes;
}

int cli_cmd_invoke(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv)
{
	struct invoke iv = { NULL, "application/octet-stream" };
	struct cli_buf ev = {0}, path = {0};
	struct cli_http_resp resp;
	char *pos[1];
	int npos;

	cli_http_resp_init(&resp, 0);
	int r = cli_args_parse(c, cmd, argc, argv, invoke_opts, invoke_opt, &iv, pos, 1, 1, &npos);
	if (r == 0 && !*pos[0])
		r = cli_usage_error(cmd, "the function name must not be empty");
	if (r == 0)
		r = load_event(cmd, iv.data, &ev);
	if (r == 0 && cli_fn_path(&path, pos[0], "/invoke") < 0)
		r = CLI_EXIT_USAGE;
	if (r)
		goto out;

	r = cli_request(c, "POST", path.data, CLI_AUTH_INVOKE, iv.ctype, ev.data, ev.len, 1,
			CLI_TIMEOUT_INVOKE, &resp);
	if (r)
		goto out;
	if (c->verbose)
		show_head(&resp);
	if (resp.status / 100 != 2 && is_runtime_error(&resp)) {
		r = cli_api_error(c, &resp);
		goto out;
	}
	/* The handler's answer, byte for byte (the handler may have chosen an
	 * error status itself: still its body, but exit 1). */
	if (resp.body.len && fwrite(resp.body.data, 1, resp.body.len, stdout) != resp.body.len) {
		fprintf(stderr, "error: writing the answer: %s\n", strerror(errno));
		r = CLI_EXIT_API;
		goto out;
	}
	/* Keep the prompt off the answer's last line on a terminal; pipes and
	 * files get the bytes exactly. */
	if (resp.body.len && resp.body.data[resp.body.len - 1] != '\n' && isatty(STDOUT_FILENO))
		putchar('\n');
	if (fflush(stdout) != 0) {
		fprintf(stderr, "error: writing the answer: %s\n", strerror(errno));
		r = CLI_EXIT_API;
		goto out;
	}
	if (resp.status / 100 != 2) {
		fprintf(stderr, "error: the handler answered HTTP %d\n", resp.status);
		r = CLI_EXIT_API;
	}
out:
	cli_http_resp_free(&resp);
	cli_buf_free(&ev);
	cli_buf_free(&path);
	return r == CLI_HELP_SHOWN ? CLI_EXIT_OK : r;
}
