/* main.c — runtimed: configuration (config.h), then the daemon (daemon.h)
 * on the default libuv loop until a SIGTERM/SIGINT has drained it. */
#include "runtimed/daemon.h"
#include "vmm/err.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	static struct rt_daemon d;
	setvbuf(stdout, NULL, _IOLBF, 0);
	int r = rt_config_parse(&d.cfg, argc, argv);
	if (r)
		return r > 0 ? 0 : 2;
	if (rt_config_prepare(&d.cfg)) {
		fprintf(stderr, "runtimed: %s\n", vmm_strerror());
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	uv_loop_t *loop = uv_default_loop();
	int status = 0;
	if (rt_daemon_start(&d, loop)) {
		fprintf(stderr, "runtimed: %s\n", vmm_strerror());
		status = 1;
	}
	uv_run(loop, UV_RUN_DEFAULT);
	if (uv_loop_close(loop))
		fprintf(stderr, "runtimed: handles left open at exit\n");
	if (!status)
		fprintf(stderr, "runtimed: stopped\n");
	return status;
}
