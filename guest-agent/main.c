/* main.c — the guest agent as PID 1: mount the pseudo filesystems, take the
 * console, listen on the agent's vsock port, tell the VMM it is ready, then
 * serve the host until it sends Shutdown.
 *
 * Kernel command-line switches (the kernel hands `key=value` words without a
 * dot to init as environment variables):
 *   uf_poweroff=1   power off right after the ready signal (boot benchmark)
 *   uf_report=1     print the clocksource and boot facts on the console
 *   uf_hang=1       never signal ready (tests the VMM's ready timeout)
 *   uf_transport=virtio-serial
 *                   serve the host over the virtio-serial port "uf.agent"
 *                   instead of vsock (bench/vsock's QEMU peer;
 *                   guest-agent/transport_serial.h)
 *
 * The handler is the runtime dispatcher (guest-agent/runtime.h): echo from
 * boot, then the runtime an Init names (native, python, exec), with the
 * function unpacked into a tmpfs on /fn.
 *
 * PID 1 never returns: every path ends in agent_poweroff(), which reports a
 * status on the unifork exit port (also QEMU's isa-debug-exit convention)
 * and falls back to a reboot, which `reboot=k`/`reboot=t` turn into a VM
 * exit in both our VMM and a QEMU microvm run with -no-reboot.
 */
#include "guest-agent/runtime.h"
#include "guest-agent/server.h"
#include "guest-agent/transport_serial.h"
#include "proto/agent_msg.h"
#include "proto/uf_abi.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

/* Exit statuses of the agent's own failures (a Shutdown's status otherwise). */
#define AGENT_EXIT_NO_TRANSPORT  70
#define AGENT_EXIT_SERVER        71

static int ports_ok;

static int flag(const char *name)
{
	const char *v = getenv(name);
	return v && strcmp(v, "1") == 0;
}

/* Boot facts for tests: which clocksource the kernel picked (kvm-clock is
 * what snapshots restore) and the kernel release. */
static void report(void)
{
	char buf[128] = "?";
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			strcpy(buf, "?");
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = 0;
	printf("agent: clocksource=%s\n", buf);
	fflush(stdout);
}

static __attribute__((noreturn)) void agent_poweroff(int status)
{
	fflush(NULL);
	if (ports_ok)
		outb((unsigned char)status, UF_PORT_EXIT);
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}

static void agent_mount(const char *src, const char *dst, const char *type,
			unsigned long flags, const char *data)
{
	if (mkdir(dst, 0755) < 0 && errno != EEXIST)
		fprintf(stderr, "agent: mkdir %s: %s\n", dst, strerror(errno));
	if (mount(src, dst, type, flags, data) < 0 && errno != EBUSY)
		fprintf(stderr, "agent: mount %s on %s: %s\n", type, dst, strerror(errno));
}

static void agent_console(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd < 0)
		return;     /* keep whatever the kernel gave us */
	for (int i = 0; i < 3; i++)
		if (fd != i)
			dup2(fd, i);
	if (fd > 2)
		close(fd);
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;

	if (getpid() != 1) {
		fprintf(stderr, "agent: must run as PID 1 inside the guest\n");
		return 2;
	}
	agent_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	agent_console();
	agent_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	agent_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	agent_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	agent_mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");

	if (ioperm(UF_PORT_EXIT, 1, 1) == 0 && ioperm(UF_PORT_READY, 4, 1) == 0)
		ports_ok = 1;
	else
		fprintf(stderr, "agent: ioperm: %s (no ready signal, no exit status)\n", strerror(errno));

	if (flag("uf_report"))
		report();
	if (flag("uf_hang"))
		for (;;)
			pause();

	const char *tr = getenv("uf_transport");
	int serial = tr && strcmp(tr, "virtio-serial") == 0;
	if (tr && !serial && strcmp(tr, "vsock") != 0) {
		fprintf(stderr, "agent: unknown uf_transport=%s (vsock, virtio-serial)\n", tr);
		agent_poweroff(AGENT_EXIT_NO_TRANSPORT);
	}
	int lfd = -1;
	if (!flag("uf_poweroff")) {
		lfd = serial ? agent_serial_open(AGENT_SERIAL_PORT_NAME, AGENT_SERIAL_OPEN_TIMEOUT_MS)
			     : agent_vsock_listen(UF_AGENT_VSOCK_PORT);
		if (lfd < 0) {
			if (serial)
				fprintf(stderr, "agent: virtio-serial port %s: %s\n",
					AGENT_SERIAL_PORT_NAME, strerror(-lfd));
			else
				fprintf(stderr, "agent: vsock port %u: %s\n", UF_AGENT_VSOCK_PORT,
					strerror(-lfd));
			agent_poweroff(AGENT_EXIT_NO_TRANSPORT);
		}
	}
	if (ports_ok)
		outl(UF_READY_MAGIC, UF_PORT_READY);
	if (lfd < 0)
		agent_poweroff(0);

	/* The exec runtime writes to its handler's stdin: a handler that died
	 * must cost a call (EPIPE), not the agent. */
	signal(SIGPIPE, SIG_IGN);
	struct agent_server_opts opts = {
		.handler = &agent_handler_runtime,
		.status = agent_runtime_status,
		.after_fixup = agent_runtime_after_fixup,
	};
	int st = serial ? agent_serial_run_opts(lfd, &opts) : agent_server_run_opts(lfd, &opts);
	if (st < 0) {
		fprintf(stderr, "agent: server failed: %s\n", strerror(-st));
		agent_poweroff(AGENT_EXIT_SERVER);
	}
	agent_poweroff(st);
}
