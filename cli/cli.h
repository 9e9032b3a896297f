/* cli.h — the `unifork` command-line client: the state of one run, exit
 * codes, the command table and the helpers commands share (argument
 * parsing in args.c, requests and error reporting in api.c).
 *
 * The CLI talks to runtimed only through the HTTP API (DESIGN.md §8).
 * Output: results on stdout (tables or "key: value" text, or the server's
 * JSON as is with --json); errors on stderr, one line, starting "error: ".
 */
#ifndef CLI_CLI_H
#define CLI_CLI_H

#include <stddef.h>

#include <jansson.h>

#include "cli/buf.h"
#include "cli/config.h"
#include "cli/http_parse.h"

#define CLI_VERSION "0.1"

enum {
	CLI_EXIT_OK = 0,      /* success */
	CLI_EXIT_API = 1,     /* the server answered with an error (or a handler did) */
	CLI_EXIT_USAGE = 2,   /* bad command line, or an unreadable local file */
	CLI_EXIT_CONNECT = 3, /* cannot connect, or no complete HTTP answer */
	CLI_HELP_SHOWN = -1,  /* internal: --help printed, exit 0 */
};

/* Client-side deadlines (seconds) when --timeout is not given. */
#define CLI_TIMEOUT_DEFAULT 30.0
#define CLI_TIMEOUT_INVOKE  300.0
#define CLI_TIMEOUT_DEPLOY  900.0
#define CLI_TIMEOUT_MAX     86400.0

/* Response bodies are held in memory up to this size. */
#define CLI_MAX_BODY (256u << 20)

struct cli_ctx {
	const char *url_flag;   /* --url or NULL */
	const char *token_flag; /* --token or NULL */
	double timeout_s;       /* --timeout, 0: the command's default */
	int json;               /* --json */
	int verbose;            /* -v */
	struct cli_target target;
};

struct cli_cmd {
	const char *name;
	const char *args;    /* synopsis after the command name */
	const char *summary; /* one line for `unifork --help` */
	const char *help;    /* option details for `unifork CMD --help` */
	int (*run)(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv);
};

/* ---- args.c ---- */

struct cli_opt {
	const char *name; /* "--memory" */
	int has_arg;
	int id;
};

/* Called for each of the command's own options; returns 0 or an exit code. */
typedef int (*cli_opt_fn)(struct cli_ctx *c, const struct cli_cmd *cmd, void *arg, int id,
			  const char *val);

/* Parse argv[0..argc) (after the command name): the command's options
 * first, then the global ones (--url --token --json --timeout -v --help),
 * positionals into pos[] (between minpos and maxpos of them).  Options take
 * "--opt VALUE" or "--opt=VALUE"; "--" ends options.  Returns 0, an exit
 * code after printing a usage error, or CLI_HELP_SHOWN. */
int cli_args_parse(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv,
		   const struct cli_opt *opts, cli_opt_fn fn, void *arg, char **pos,
		   int minpos, int maxpos, int *npos);

/* Handle a global option at argv[*i] (advancing *i past its value).
 * Returns 1 if it was one, 0 if not, or an exit code (> 1) / CLI_HELP_SHOWN. */
int cli_global_opt(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv, int *i);

/* Print "error: CMD: message" and the command's synopsis; returns CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void cli_cmd_help(const struct cli_cmd *cmd);

/* Strict decimal in [min, max]; 0 or -EINVAL. */
int cli_parse_uint(const char *s, unsigned long long min, unsigned long long max,
		   unsigned long long *out);

/* ---- api.c ---- */

enum cli_auth {
	CLI_AUTH_CONTROL, /* send the token from any source */
	CLI_AUTH_INVOKE,  /* send it only if given explicitly (--token / UNIFORK_TOKEN) */
};

/* One request to runtimed.  Returns CLI_EXIT_OK once a response (any
 * status) is in `resp`; otherwise prints the reason and returns
 * CLI_EXIT_CONNECT (or CLI_EXIT_USAGE for a bad --url or token).  `resp` is
 * initialised here; the caller frees it in every case. */
int cli_request(struct cli_ctx *c, const char *method, const char *path, enum cli_auth auth,
		const char *ctype, const void *body, size_t len, int has_body,
		double default_timeout, struct cli_http_resp *resp);

/* "/v1/functions/NAME" + suffix (NAME percent-encoded) into out. */
int cli_fn_path(struct cli_buf *out, const char *name, const char *suffix);

/* Print the error a non-2xx response stands for; returns CLI_EXIT_API. */
int cli_api_error(struct cli_ctx *c, const struct cli_http_resp *resp);

/* The body if it is a JSON object (new reference) or NULL. */
json_t *cli_json_object(const struct cli_http_resp *resp);

/* ---- the commands (cmd_*.c) ---- */

int cli_cmd_deploy(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv);
int cli_cmd_invoke(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv);
int cli_cmd_ls(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv);
int cli_cmd_get(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv);
int cli_cmd_rm(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv);
int cli_cmd_logs(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv);
int cli_cmd_pool(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv);
int cli_cmd_info(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv);
int cli_cmd_health(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv);

#endif
