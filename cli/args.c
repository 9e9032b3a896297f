/* args.c — command-line option parsing shared by all commands. */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "error: %s%s", cmd ? cmd->name : "", cmd ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (cmd)
		fprintf(stderr, "usage: unifork %s %s\n       (unifork %s --help for details)\n",
			cmd->name, cmd->args, cmd->name);
	else
		fprintf(stderr, "usage: unifork [GLOBAL OPTIONS] COMMAND ... (unifork --help)\n");
	return CLI_EXIT_USAGE;
}

void cli_cmd_help(const struct cli_cmd *cmd)
{
	printf("usage: unifork %s %s\n\n%s\n", cmd->name, cmd->args, cmd->summary);
	if (cmd->help && *cmd->help)
		printf("\n%s", cmd->help);
	printf("\nGlobal options (--url --token --json --timeout -v): see unifork --help\n");
}

int cli_parse_uint(const char *s, unsigned long long min, unsigned long long max,
		   unsigned long long *out)
{
	if (!s || !*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 19)
		return -EINVAL;
	unsigned long long v = strtoull(s, NULL, 10);
	if (v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Split "--name=value": returns the length of the name part. */
static size_t opt_name_len(const char *a)
{
	const char *eq = strchr(a, '=');
	return eq ? (size_t)(eq - a) : strlen(a);
}

static int opt_is(const char *a, const char *name)
{
	size_t n = opt_name_len(a);
	return strlen(name) == n && strncmp(a, name, n) == 0;
}

/* The value of the option at argv[*i]: inline after '=' or the next word. */
static const char *opt_value(const struct cli_cmd *cmd, int argc, char **argv, int *i, int *err)
{
	const char *a = argv[*i];
	const char *eq = strchr(a, '=');
	*err = 0;
	if (eq)
		return eq + 1;
	if (*i + 1 >= argc) {
		*err = cli_usage_error(cmd, "%.*s needs a value", (int)opt_name_len(a), a);
		return NULL;
	}
	return argv[++*i];
}

int cli_global_opt(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	int err;

	if (strcmp(a, "-h") == 0 || opt_is(a, "--help")) {
		if (cmd)
			cli_cmd_help(cmd);
		return CLI_HELP_SHOWN;
	}
	if (strcmp(a, "-v") == 0 || opt_is(a, "--verbose")) {
		c->verbose = 1;
		return 1;
	}
	if (opt_is(a, "--json")) {
		c->json = 1;
		return 1;
	}
	if (opt_is(a, "--url")) {
		c->url_flag = opt_value(cmd, argc, argv, i, &err);
		return err ? err : 1;
	}
	if (opt_is(a, "--token")) {
		c->token_flag = opt_value(cmd, argc, argv, i, &err);
		return err ? err : 1;
	}
	if (opt_is(a, "--timeout")) {
		const char *v = opt_value(cmd, argc, argv, i, &err);
		if (err)
			return err;
		char *end;
		errno = 0;
		double t = strtod(v, &end);
		if (errno || end == v || *end || !(t > 0) || t > CLI_TIMEOUT_MAX)
			return cli_usage_error(cmd, "--timeout wants seconds in (0, %g], not '%s'",
					       CLI_TIMEOUT_MAX, v);
		c->timeout_s = t;
		return 1;
	}
	return 0;
}

int cli_args_parse(struct cli_ctx *c, const struct cli_cmd *cmd, int argc, char **argv,
		   const struct cli_opt *opts, cli_opt_fn fn, void *arg, char **pos,
		   int minpos, int maxpos, int *npos)
{
	int n = 0, only_pos = 0;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
			if (n == maxpos)
				return cli_usage_error(cmd, "unexpected argument '%s'", a);
			pos[n++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_pos = 1;
			continue;
		}
		const struct cli_opt *o = opts;
		while (o && o->name && !opt_is(a, o->name))
			o++;
		if (o && o->name) {
			const char *val = NULL;
			int err = 0;
			if (o->has_arg)
				val = opt_value(cmd, argc, argv, &i, &err);
			else if (strchr(a, '='))
				return cli_usage_error(cmd, "%s takes no value", o->name);
			if (err)
				return err;
			int r = fn(c, cmd, arg, o->id, val);
			if (r)
				return r;
			continue;
		}
		int r = cli_global_opt(c, cmd, argc, argv, &i);
		if (r == 1)
			continue;
		if (r != 0)
			return r;
		return cli_usage_error(cmd, "unknown option '%s'", a);
	}
	if (n < minpos)
		return cli_usage_error(cmd, "missing argument%s", minpos - n > 1 ? "s" : "");
	*npos = n;
	return 0;
}
