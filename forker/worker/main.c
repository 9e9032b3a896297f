/* main.c — uf-worker: the forker worker process runtimed runs per function
 * (`serve`, worker.h) and for template builds (`build`, build.h).  Both jail
 * themselves (jail.h) unless told --no-jail / UNIFORK_JAIL=off; the flags
 * may stand anywhere on the command line. */
#include "forker/worker/jail.h"
#include "forker/worker/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --jail / --no-jail out of argv (the mode parsers do not know them). */
static int take_jail_flags(int argc, char **argv)
{
	const char *env = getenv("UNIFORK_JAIL");
	if (env && strcmp(env, "off") != 0 && strcmp(env, "on") != 0) {
		fprintf(stderr, "uf-worker: UNIFORK_JAIL=%s: want on or off\n", env);
		return -1;
	}
	jail_wanted = !env || strcmp(env, "off") != 0;
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--jail") == 0)
			jail_wanted = true;
		else if (strcmp(argv[i], "--no-jail") == 0)
			jail_wanted = false;
		else
			argv[n++] = argv[i];
	}
	argv[n] = NULL;
	return n;
}

int main(int argc, char **argv)
{
	argc = take_jail_flags(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return worker_serve_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "build") == 0)
		return worker_build_main(argc - 1, argv + 1);
	fprintf(stderr, "usage: uf-worker [--jail|--no-jail] serve ... | build ...  (see forker/worker/)\n");
	return 2;
}
