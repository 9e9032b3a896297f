/* hello-init — a trivial /init for the guest boot check (guest/boot-check.sh).
 * Proves the kernel reaches userspace with a working console, that the
 * syscalls the agent relies on exist (mount of proc/devtmpfs/tmpfs, ioperm,
 * AF_UNIX, AF_VSOCK, epoll, eventfd, timerfd, signalfd), then reboots so the
 * VMM exits by itself. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static int fails;

static void check(const char *what, int ok)
{
	printf("check %-22s %s%s%s\n", what, ok ? "ok" : "FAILED (", ok ? "" : strerror(errno), ok ? "" : ")");
	if (!ok)
		fails++;
}

int main(void)
{
	struct timespec ts;
	sigset_t set;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	printf("hello from init (pid %d, %ld.%03ld s after boot)\n", (int)getpid(),
	       (long)ts.tv_sec, ts.tv_nsec / 1000000);
	check("mount proc", mount("proc", "/proc", "proc", 0, NULL) == 0);
	check("mount devtmpfs", mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) == 0);
	check("mount tmpfs /tmp", mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777") == 0);
	check("ioperm", ioperm(0x3f8, 8, 1) == 0);
	check("socket AF_UNIX", socket(AF_UNIX, SOCK_STREAM, 0) >= 0);
	check("socket AF_VSOCK", socket(AF_VSOCK, SOCK_STREAM, 0) >= 0);
	check("epoll_create1", epoll_create1(EPOLL_CLOEXEC) >= 0);
	check("eventfd", eventfd(0, EFD_CLOEXEC) >= 0);
	check("timerfd_create", timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC) >= 0);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	check("signalfd", signalfd(-1, &set, SFD_CLOEXEC) >= 0);
	printf("boot-check: %s\n", fails ? "FAILED" : "PASSED");
	fflush(stdout);
	sync();
	reboot(RB_AUTOBOOT);
	return 1;
}
