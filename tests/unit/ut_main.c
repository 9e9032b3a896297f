/* ut_main.c — runner for the unit tests linked into one binary. */
#include "tests/unit/ut.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct ut_case ut_cases[UT_MAX_CASES];
int ut_ncases;

#define UT_TIMEOUT_S 60

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	if (argc == 2) { /* one test, in-process */
		for (int i = 0; i < ut_ncases; i++)
			if (strcmp(ut_cases[i].name, argv[1]) == 0) {
				ut_cases[i].fn();
				printf("ok %s\n", argv[1]);
				return 0;
			}
		fprintf(stderr, "%s: no test named %s\n", argv[0], argv[1]);
		return 2;
	}
	for (int i = 0; i < ut_ncases; i++) {
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 2;
		}
		if (pid == 0) {
			alarm(UT_TIMEOUT_S);
			ut_cases[i].fn();
			fflush(NULL);
			_exit(0);
		}
		int st;
		if (waitpid(pid, &st, 0) < 0) {
			perror("waitpid");
			return 2;
		}
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			passed++;
			printf("ok   %s\n", ut_cases[i].name);
		} else {
			failed++;
			if (WIFSIGNALED(st))
				printf("FAIL %s (signal %d%s)\n", ut_cases[i].name, WTERMSIG(st),
				       WTERMSIG(st) == SIGALRM ? ": timeout" : "");
			else
				printf("FAIL %s (exit %d)\n", ut_cases[i].name, WEXITSTATUS(st));
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
