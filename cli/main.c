/* main.c — `unifork`: global options, the command table, help, dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct cli_cmd commands[] = {
	{ "deploy",
	  "NAME DIR --runtime R [--handler H] [--memory MB] [--timeout MS] [--env K=V]... "
	  "[--min-warm N] [--max-instances N] [--idle-timeout S]",
	  "Create or update a function from DIR (packed as .tar.gz) or a prebuilt .tar.gz.",
	  "  --runtime R         native, python or exec (required)\n"
	  "  --handler H         entry point (python module.function, the .so or the\n"
	  "                      executable's path; default per runtime)\n"
	  "  --memory MB         guest memory (server default 128)\n"
	  "  --timeout MS        per-invocation deadline of the FUNCTION (server default\n"
	  "                      3000); the client's own deadline goes before the command:\n"
	  "                      unifork --timeout S deploy ...\n"
	  "  --env K=V           environment variable for the handler (repeatable)\n"
	  "  --min-warm N, --max-instances N, --idle-timeout S   pool knobs\n"
	  "DIR is packed in-process: regular files, directories and symlinks that stay\n"
	  "inside DIR, sorted, with normalised owners/times (mode 0755 if executable,\n"
	  "else 0644).  Returns once the function template is ready (201 created,\n"
	  "200 updated); a failing init is reported as error: init_failed: ...\n",
	  cli_cmd_deploy },
	{ "invoke", "NAME [--data @FILE|-|STRING] [--content-type T]",
	  "Call a function; its answer goes to stdout byte for byte.",
	  "  --data, -d D        the event: @FILE, - for stdin, or the string itself\n"
	  "                      (default: empty)\n"
	  "  --content-type T    default application/octet-stream\n"
	  "  -v                  show the response status and headers on stderr\n"
	  "                      (X-Call-Id, X-Start-Type, X-Restore-Us, X-Duration-Us)\n"
	  "A handler answering a non-2xx status still has its body printed; exit 1.\n"
	  "The token is sent only when given by --token or UNIFORK_TOKEN (invocations\n"
	  "are open by default; the token file is never sent to a function endpoint).\n",
	  cli_cmd_invoke },
	{ "ls", "", "List functions.", "", cli_cmd_ls },
	{ "get", "NAME", "Show one function: state, template, pool, latency.", "", cli_cmd_get },
	{ "rm", "NAME", "Remove a function, its pool and its template files.", "", cli_cmd_rm },
	{ "logs", "NAME [--tail N]", "Recent handler stdout/stderr.",
	  "  --tail N            at most N records (server default 100)\n", cli_cmd_logs },
	{ "pool", "NAME [--min-warm N] [--max N] [--idle-timeout S]",
	  "Change a function's pool knobs live (only the ones given change).",
	  "  --min-warm N        clones kept ready\n"
	  "  --max N             max_instances (alias --max-instances)\n"
	  "  --idle-timeout S    seconds an idle warm clone is kept\n", cli_cmd_pool },
	{ "info", "", "Show the daemon's version and KVM mode.", "", cli_cmd_info },
	{ "health", "", "Check /healthz and /readyz (exit 0 only if both are OK).", "",
	  cli_cmd_health },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void main_help(void)
{
	printf("usage: unifork [GLOBAL OPTIONS] COMMAND [ARGS]\n\n"
	       "The command-line client of the unifork runtime (talks to runtimed over HTTP).\n\n"
	       "Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		printf("  %-8s %s\n", commands[i].name, commands[i].summary);
	printf("\nGlobal options (before or after the command):\n"
	       "  --url URL        runtimed's address: [http://]HOST[:PORT][/PREFIX]\n"
	       "                   (default $UNIFORK_LISTEN, else %s)\n"
	       "  --token T        control-plane token (default $UNIFORK_TOKEN, else the\n"
	       "                   file ${UNIFORK_DATA:-./var}/token)\n"
	       "  --json           print the server's JSON as is instead of tables\n"
	       "  --timeout S      client deadline in seconds for the whole call (default\n"
	       "                   %g; invoke %g; deploy %g — for deploy put it before the\n"
	       "                   command, after it --timeout is the function's)\n"
	       "  -v, --verbose    more detail (invoke: response status and headers)\n"
	       "  -h, --help       this text; unifork COMMAND --help for a command\n"
	       "  --version        print the client version\n"
	       "\nExit codes:\n"
	       "  0  success\n"
	       "  1  the server answered with an error (printed as error: CODE: message),\n"
	       "     or a handler answered a non-2xx status, or health is not OK\n"
	       "  2  usage error, or a local file or directory that cannot be read\n"
	       "  3  cannot connect to runtimed, or no complete HTTP response (timeout,\n"
	       "     connection lost, not HTTP)\n",
	       CLI_DEFAULT_ADDR, CLI_TIMEOUT_DEFAULT, CLI_TIMEOUT_INVOKE, CLI_TIMEOUT_DEPLOY);
}

int main(int argc, char **argv)
{
	struct cli_ctx c = {0};
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--version") == 0) {
			printf("unifork %s\n", CLI_VERSION);
			return CLI_EXIT_OK;
		}
		int r = cli_global_opt(&c, NULL, argc, argv, &i);
		if (r == CLI_HELP_SHOWN) {
			main_help();
			return CLI_EXIT_OK;
		}
		if (r == 0)
			return cli_usage_error(NULL, "unknown option '%s'", argv[i]);
		if (r != 1)
			return r;
	}
	if (i == argc)
		return cli_usage_error(NULL, "no command given");
	const char *name = argv[i];
	if (strcmp(name, "help") == 0) {
		for (size_t k = 0; i + 1 < argc && k < NCOMMANDS; k++)
			if (strcmp(commands[k].name, argv[i + 1]) == 0) {
				cli_cmd_help(&commands[k]);
				return CLI_EXIT_OK;
			}
		main_help();
		return CLI_EXIT_OK;
	}
	for (size_t k = 0; k < NCOMMANDS; k++)
		if (strcmp(commands[k].name, name) == 0)
			return commands[k].run(&c, &commands[k], argc - i - 1, argv + i + 1);
	return cli_usage_error(NULL, "unknown command '%s'", name);
}
