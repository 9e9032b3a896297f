/* test_seccomp.c — runtimed's own filter (runtimed/seccomp.h), installed in
 * a forked child: what it denies kills (SIGSYS), what runtimed and the
 * workers' jail set-up need still works, and the jail's syscalls are
 * denied when the jail is off. */
#include "runtimed/seccomp.h"
#include "tests/unit/ut.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Fork; the child installs the filter and runs `fn`; returns wait status. */
static int filtered(bool jail_on, void (*fn)(void))
{
	fflush(NULL);
	pid_t pid = fork();
	UT_ASSERT(pid >= 0);
	if (pid == 0) {
		if (rt_seccomp_install(jail_on))
			_exit(99);
		fn();
		_exit(0);
	}
	int st;
	UT_EQ(waitpid(pid, &st, 0), pid);
	return st;
}

static void expect_sigsys(int st)
{
	UT_ASSERT(WIFSIGNALED(st));
	UT_EQ(WTERMSIG(st), SIGSYS);
}

static void expect_ok(int st)
{
	if (WIFSIGNALED(st))
		UT_FAIL("killed by signal %d", WTERMSIG(st));
	UT_EQ(WEXITSTATUS(st), 0);
}

static void do_kcmp(void)
{
	syscall(SYS_kcmp, getpid(), getpid(), 0, 0, 0);
	_exit(5);
}

static void do_bpf(void)
{
	syscall(SYS_bpf, 0, NULL, 0);
	_exit(5);
}

static void do_unshare(void)
{
	/* unshare(0) changes nothing: only the filter can refuse it. */
	if (unshare(0) != 0)
		_exit(6);
}

static void do_daemon_work(void)
{
	/* What runtimed does all day: sockets, files, processes. */
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		_exit(7);
	close(s);
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	char buf[64];
	if (fd < 0 || read(fd, buf, sizeof(buf)) <= 0)
		_exit(8);
	close(fd);
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	int st;
	if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st))
		_exit(9);
}

UT_TEST(seccomp_runtimed_denies)
{
	expect_sigsys(filtered(true, do_kcmp));
	expect_sigsys(filtered(true, do_bpf));
}

UT_TEST(seccomp_runtimed_allows_its_work)
{
	expect_ok(filtered(true, do_daemon_work));
	expect_ok(filtered(false, do_daemon_work));
}

UT_TEST(seccomp_runtimed_jail_syscalls_follow_the_jail)
{
	expect_ok(filtered(true, do_unshare));
	expect_sigsys(filtered(false, do_unshare));
}

UT_TEST(seccomp_runtimed_list_resolves)
{
	UT_ASSERT(rt_seccomp_n_denied > 10);
	for (size_t i = 0; i < rt_seccomp_n_denied; i++) {
		UT_ASSERT(rt_seccomp_denied[i].name && rt_seccomp_denied[i].why);
		UT_ASSERT(strlen(rt_seccomp_denied[i].why) > 5);
		for (size_t k = 0; k < i; k++)
			UT_ASSERT(strcmp(rt_seccomp_denied[i].name, rt_seccomp_denied[k].name) != 0);
	}
}
