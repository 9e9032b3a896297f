/* main.c — runtimed: configuration (config.h), then the daemon (daemon.h)
 * on the default libuv loop until a SIGTERM/SIGINT has drained it.
 *
 * `--jail on|off` (UNIFORK_JAIL, default on) is taken here: it is passed
 * to every worker through UNIFORK_JAIL (forker/worker/jail.h) and chooses
 * runtimed's own seccomp filter (seccomp.h), installed once the daemon has
 * started. */
#include "runtimed/daemon.h"
#include "runtimed/seccomp.h"
#include "vmm/err.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* Every client connection is an fd: the gateway admits up to 1024 of them
 * (more are answered 503), so the common soft limit of 1024 would run out
 * first and libuv would close the surplus without a word (seen with 2000
 * concurrent calls, tests/burst).  Raise the soft limit to the hard one. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		perror("runtimed: raising the open-file limit");
}

/* --jail on|off / --jail=on|off out of argv; 0, or -1 on a bad value. */
static int take_jail(int *argc, char **argv, bool *on)
{
	const char *v = getenv("UNIFORK_JAIL");
	int n = 1;
	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--jail") == 0 && i + 1 < *argc)
			v = argv[++i];
		else if (strncmp(argv[i], "--jail=", 7) == 0)
			v = argv[i] + 7;
		else
			argv[n++] = argv[i];
	}
	argv[n] = NULL;
	*argc = n;
	if (v && strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
		fprintf(stderr, "runtimed: --jail %s: want on or off\n", v);
		return -1;
	}
	*on = !v || strcmp(v, "on") == 0;
	/* The workers read it (uv_spawn passes runtimed's environment). */
	return setenv("UNIFORK_JAIL", *on ? "on" : "off", 1);
}

int main(int argc, char **argv)
{
	static struct rt_daemon d;
	setvbuf(stdout, NULL, _IOLBF, 0);
	bool jail = true;
	if (take_jail(&argc, argv, &jail))
		return 2;
	int r = rt_config_parse(&d.cfg, argc, argv);
	if (r) {
		if (r > 0)
			printf("  --jail on|off  jail the workers (UNIFORK_JAIL, default on; SECURITY.md)\n");
		return r > 0 ? 0 : 2;
	}
	if (rt_config_prepare(&d.cfg)) {
		fprintf(stderr, "runtimed: %s\n", vmm_strerror());
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	uv_loop_t *loop = uv_default_loop();
	int status = 0;
	if (rt_daemon_start(&d, loop)) {
		fprintf(stderr, "runtimed: %s\n", vmm_strerror());
		status = 1;
	} else if (rt_seccomp_install(jail)) {
		fprintf(stderr, "runtimed: %s\n", vmm_strerror());
		/* Stop as SIGTERM would: the daemon is already up. */
		raise(SIGTERM);
		status = 1;
	}
	uv_run(loop, UV_RUN_DEFAULT);
	if (uv_loop_close(loop))
		fprintf(stderr, "runtimed: handles left open at exit\n");
	if (!status)
		fprintf(stderr, "runtimed: stopped\n");
	return status;
}
