/* main.c — uf-worker: the forker worker process runtimed runs per function
 * (`serve`, worker.h) and for template builds (`build`, build.h). */
#include "forker/worker/worker.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return worker_serve_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "build") == 0)
		return worker_build_main(argc - 1, argv + 1);
	fprintf(stderr, "usage: uf-worker serve ... | uf-worker build ...  (see forker/worker/)\n");
	return 2;
}
