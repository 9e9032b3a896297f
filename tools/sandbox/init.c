/* init.c — PID 1 of the KVM sandbox VM (built static into build/sandbox/init).
 *
 * The initramfs that tools/sandbox/run assembles holds this program as
 * /init, the kernel modules in /modules (loaded in the order /modules/order
 * lists, dependencies first) and, appended per run, a /ufcfg directory:
 *
 *   argv      CMD and its arguments, each ending in NUL
 *   env       the caller's environment, KEY=VALUE each ending in NUL
 *   cwd       the caller's working directory
 *   shares    lines "TAG PATH": 9p exports to mount read-write at PATH
 *   p9opts    extra 9p mount options for the root (e.g. cache=loose)
 *   net       present: configure eth0 as 10.0.2.15/24 (QEMU user net)
 *   tty       present: stdin is a terminal; content "ROWS COLS" or empty
 *   verbose   present: report each step with its time on the console
 *
 * It loads the modules, mounts the host root (9p tag "hostroot") read-only
 * at /newroot, mounts proc, sys, devtmpfs, devpts, tmpfs /tmp and /run and
 * the shares beneath it, brings up lo (and eth0), then forks CMD chrooted
 * into /newroot with its stdout+stderr on the virtio console /dev/hvc0.  When
 * CMD exits it writes "UNIFORK-SANDBOX-EXIT=N" on the serial console (the
 * kernel console, which the run script logs to a file) and powers off.
 * While CMD runs it writes "UNIFORK-SANDBOX-ALIVE <uptime>" there every
 * ALIVE_SECONDS: the run script's sign of life, by which it tells a sandbox
 * that stopped for good (see README.md, QEMU quirks) from a slow CMD.
 * Its own errors go to the serial console as "sandbox: ..." lines, which the
 * run script shows on stderr; they end with exit status 125 (127/126 for a
 * CMD that cannot be found/executed).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define NEWROOT "/newroot"
#define HVC "/dev/hvc0"
#define EXIT_SANDBOX 125
#define ALIVE_SECONDS 10

static int console_fd = 2;      /* serial console (kernel console) */
static bool verbose;

extern char **environ;

__attribute__((format(printf, 1, 2)))
static void say(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	ssize_t w = write(console_fd, buf, (size_t)n);
	(void)w;
}

static double uptime_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((format(printf, 1, 2)))
static void step(const char *fmt, ...)
{
	if (!verbose)
		return;
	char buf[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	say("uf-init: [%8.3f] %s", uptime_s(), buf);
}

static volatile sig_atomic_t alive_due;

static void on_alarm(int sig)
{
	(void)sig;
	alive_due = 1;
}

/* A SIGALRM every ALIVE_SECONDS that interrupts waitpid() (no SA_RESTART);
 * the wait loop then writes the heartbeat.  Set after CMD's fork: interval
 * timers are not inherited, and CMD keeps the default SIGALRM action. */
static void start_heartbeat(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	struct itimerval it = {
		.it_interval = { .tv_sec = ALIVE_SECONDS },
		.it_value = { .tv_sec = ALIVE_SECONDS },
	};
	if (sigaction(SIGALRM, &sa, NULL) < 0 || setitimer(ITIMER_REAL, &it, NULL) < 0)
		say("sandbox: no heartbeat (%s): a stopped sandbox is found by --timeout only",
		    strerror(errno));
}

/* Ends the VM: reports `status` on the serial console and powers off. */
__attribute__((noreturn))
static void finish(int status)
{
	kill(-1, SIGKILL);
	sync();
	say("UNIFORK-SANDBOX-EXIT=%d", status);
	reboot(RB_POWER_OFF);
	reboot(RB_AUTOBOOT); /* -no-reboot turns this into QEMU's exit too */
	for (;;)
		pause();
}

/* Reads a whole file into a NUL-terminated malloc'd buffer.  Returns NULL
 * (errno set) on failure; *len gets the size without the terminator. */
static char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	for (;;) {
		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				close(fd);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			close(fd);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Splits a buffer of NUL-terminated strings into a NULL-terminated vector. */
static char **split_nul(char *buf, size_t len)
{
	size_t count = 0;
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\0')
			count++;
	if (len && buf[len - 1] != '\0')
		count++; /* unterminated last string: read_file added the NUL */
	char **v = calloc(count + 1, sizeof(char *));
	if (!v)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < len && k < count;) {
		v[k++] = buf + i;
		i += strlen(buf + i) + 1;
	}
	v[k] = NULL;
	return v;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[4096];
	if (strlen(path) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(tmp, path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int do_mount(const char *src, const char *target, const char *type,
		    unsigned long flags, const char *opts)
{
	if (mount(src, target, type, flags, opts) < 0) {
		say("sandbox: mount %s (%s) on %s: %s", src, type, target, strerror(errno));
		return -1;
	}
	return 0;
}

/* Loads every module /modules/order names, in order. */
/* Parameters some modules need in the sandbox.  kvm: every VM starts an
 * NX-hugepage recovery thread that kvm_destroy_vm() stops with
 * kthread_stop(); under TCG, with VMs created and destroyed back to back,
 * that wait was seen never to end (the clone tests hung after 20-60 VMs,
 * the process stuck in kvm_vm_release).  "never" starts no such thread;
 * the mitigation is for a hardware erratum the emulated CPU does not have.
 * kvm_amd: vgif=0.  With virtual GIF, QEMU 7.2's TCG emulation of SVM was
 * seen to leave the sandbox's own vCPU halted with GIF clear: a LAPIC timer
 * interrupt pending in IRR, the CPU in HLT with IF set, an NMI from the
 * monitor not delivered either — the sandbox stopped for good, about once
 * in a few hundred VM clones.  The nested guest does not use CLGI/STGI, so
 * doing without virtual GIF costs it nothing. */
static const char *module_params(const char *name)
{
	if (strcmp(name, "kvm") == 0)
		return "nx_huge_pages=never";
	if (strcmp(name, "kvm_amd") == 0)
		return "vgif=0";
	return "";
}

static int load_modules(const char *net_wanted)
{
	size_t len;
	char *order = read_file("/modules/order", &len);
	if (!order) {
		say("sandbox: /modules/order: %s", strerror(errno));
		return -1;
	}
	int loaded = 0;
	for (char *line = strtok(order, "\n"); line; line = strtok(NULL, "\n")) {
		/* "file.ko" or "file.ko net": the latter only when networking */
		char *flag = strchr(line, ' ');
		if (flag) {
			*flag++ = '\0';
			if (!strcmp(flag, "net") && !net_wanted)
				continue;
		}
		char name[256], path[512];
		snprintf(name, sizeof(name), "%s", line);
		char *dot = strstr(name, ".ko");
		if (dot)
			*dot = '\0';
		snprintf(path, sizeof(path), "/sys/module/%s", name);
		if (exists(path))
			continue; /* built in, or already loaded */
		snprintf(path, sizeof(path), "/modules/%s", line);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			say("sandbox: module %s: open: %s", line, strerror(errno));
			free(order);
			return -1;
		}
		long r = syscall(SYS_finit_module, fd, module_params(name), 0);
		int e = errno;
		close(fd);
		if (r < 0) {
			/* EEXIST here comes from the module's init (e.g. a second
			 * KVM vendor module), not from a duplicate load. */
			say("sandbox: loading module %s failed: %s (errno %d)", name,
			    strerror(e), e);
			free(order);
			return -1;
		}
		loaded++;
	}
	free(order);
	step("loaded %d modules", loaded);
	return 0;
}

static int wait_for(const char *path, int ms)
{
	for (int waited = 0; waited <= ms; waited += 5) {
		if (exists(path))
			return 0;
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return -1;
}

static int if_up(int sock, const char *name, const char *addr, const char *mask)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (addr) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
		sin->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &sin->sin_addr);
		if (ioctl(sock, SIOCSIFADDR, &ifr) < 0) {
			say("sandbox: %s: set address %s: %s", name, addr, strerror(errno));
			return -1;
		}
		sin = (struct sockaddr_in *)&ifr.ifr_netmask;
		sin->sin_family = AF_INET;
		inet_pton(AF_INET, mask, &sin->sin_addr);
		if (ioctl(sock, SIOCSIFNETMASK, &ifr) < 0) {
			say("sandbox: %s: set netmask: %s", name, strerror(errno));
			return -1;
		}
	}
	if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) {
		say("sandbox: %s: get flags: %s", name, strerror(errno));
		return -1;
	}
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0) {
		say("sandbox: %s: up: %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

static int setup_net(bool eth0)
{
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		say("sandbox: socket: %s", strerror(errno));
		return -1;
	}
	int rc = if_up(sock, "lo", NULL, NULL);
	if (rc == 0 && eth0) {
		/* virtio_net probes synchronously, but give udev-less naming a moment */
		for (int i = 0; i < 200 && if_nametoindex("eth0") == 0; i++) {
			struct timespec ts = {0, 10 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
		rc = if_up(sock, "eth0", "10.0.2.15", "255.255.255.0");
	}
	close(sock);
	return rc;
}

/* Mounts the shares listed in /ufcfg/shares ("TAG PATH" lines). */
static int mount_shares(const char *shares)
{
	char *copy = strdup(shares);
	if (!copy) {
		say("sandbox: out of memory");
		return -1;
	}
	int rc = 0;
	for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
		char *path = strchr(line, ' ');
		if (!path)
			continue;
		*path++ = '\0';
		char target[4096];
		snprintf(target, sizeof(target), NEWROOT "%s", path);
		/* Beneath a tmpfs (/tmp, /run) the mount point may need making;
		 * on the read-only host root it already exists. */
		if (!exists(target) && mkdir_p(target, 0755) < 0) {
			say("sandbox: share %s: cannot make mount point: %s", path,
			    strerror(errno));
			rc = -1;
			break;
		}
		if (do_mount(line, target, "9p", 0,
			     "trans=virtio,version=9p2000.L,msize=262144,cache=mmap") < 0) {
			rc = -1;
			break;
		}
		step("share %s mounted read-write", path);
	}
	free(copy);
	return rc;
}

static int mount_newroot(const char *p9opts)
{
	char opts[512];
	snprintf(opts, sizeof(opts), "trans=virtio,version=9p2000.L,msize=262144%s%s",
		 p9opts && *p9opts ? "," : "", p9opts ? p9opts : "");
	/* 9pnet_virtio binds during module load; retry briefly to be safe. */
	int tries = 0;
	while (mount("hostroot", NEWROOT, "9p", MS_RDONLY, opts) < 0) {
		if ((errno != ENOENT && errno != EBUSY) || ++tries > 100) {
			say("sandbox: mount host root over 9p (%s): %s", opts, strerror(errno));
			return -1;
		}
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	step("host root mounted read-only (%s)", opts);

	if (do_mount("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ||
	    do_mount("sysfs", NEWROOT "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ||
	    do_mount("devtmpfs", NEWROOT "/dev", "devtmpfs", MS_NOSUID, "mode=0755") < 0 ||
	    do_mount("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0 ||
	    do_mount("tmpfs", NEWROOT "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
		return -1;
	/* Conveniences; their failure is not fatal. */
	mkdir(NEWROOT "/dev/pts", 0755);
	mount("devpts", NEWROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
	      "newinstance,ptmxmode=0666,mode=0620");
	mkdir(NEWROOT "/dev/shm", 01777);
	mount("tmpfs", NEWROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	mount("cgroup2", NEWROOT "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	if (!exists(NEWROOT "/dev/ptmx") && exists(NEWROOT "/dev/pts/ptmx"))
		symlink("pts/ptmx", NEWROOT "/dev/ptmx");
	if (!exists(NEWROOT "/dev/fd"))
		symlink("/proc/self/fd", NEWROOT "/dev/fd");
	return 0;
}

static void set_console_mode(int fd, bool tty, const char *winsize)
{
	struct termios t;
	if (tcgetattr(fd, &t) < 0)
		return;
	if (!tty)
		cfmakeraw(&t);
	else
		t.c_lflag &= ~(tcflag_t)ECHO; /* until CMD starts: see run_cmd */
	t.c_oflag &= ~(tcflag_t)OPOST; /* no \n -> \r\n: output passes byte for byte */
	tcsetattr(fd, TCSANOW, &t);
	unsigned rows, cols;
	if (winsize && sscanf(winsize, "%u %u", &rows, &cols) == 2) {
		struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
		ioctl(fd, TIOCSWINSZ, &ws);
	}
}

/* The child: chroot, cwd, fds, environment, exec.  Never returns. */
__attribute__((noreturn))
static void run_cmd(char **argv, char **envv, const char *cwd, int hvc, bool tty)
{
	setsid();
	if (tty) {
		ioctl(hvc, TIOCSCTTY, 0);
		/* Drop the (unechoed) input from before CMD: a stray NUL
		 * arrives on the console at start-up; then echo again. */
		tcflush(hvc, TCIFLUSH);
		struct termios t;
		if (tcgetattr(hvc, &t) == 0) {
			t.c_lflag |= ECHO;
			tcsetattr(hvc, TCSANOW, &t);
		}
	}
	if (chroot(NEWROOT) < 0) {
		say("sandbox: chroot: %s", strerror(errno));
		_exit(EXIT_SANDBOX);
	}
	if (chdir(cwd) < 0) {
		say("sandbox: working directory %s: %s (under /tmp or /run? those are "
		    "tmpfs inside the sandbox: --share the directory)", cwd, strerror(errno));
		_exit(EXIT_SANDBOX);
	}
	int in = tty ? hvc : open("/dev/null", O_RDONLY);
	if (in < 0) {
		say("sandbox: /dev/null: %s", strerror(errno));
		_exit(EXIT_SANDBOX);
	}
	if (dup2(in, 0) < 0 || dup2(hvc, 1) < 0 || dup2(hvc, 2) < 0) {
		say("sandbox: dup2: %s", strerror(errno));
		_exit(EXIT_SANDBOX);
	}
	if (in > 2 && in != hvc)
		close(in);
	if (hvc > 2)
		close(hvc);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);

	environ = envv; /* execvp searches the PATH of the new environment */
	execvp(argv[0], argv);
	int e = errno;
	if (e == ENOENT) {
		say("sandbox: %s: command not found", argv[0]);
		_exit(127);
	}
	say("sandbox: %s: cannot execute: %s", argv[0], strerror(e));
	_exit(126);
}

int main(void)
{
	/* fds 0-2 are /dev/console from the initramfs; keep a private copy. */
	int cfd = fcntl(2, F_DUPFD_CLOEXEC, 3);
	if (cfd >= 0)
		console_fd = cfd;

	mkdir("/dev", 0755);
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir(NEWROOT, 0755);
	if (do_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") < 0 ||
	    do_mount("proc", "/proc", "proc", 0, NULL) < 0 ||
	    do_mount("sysfs", "/sys", "sysfs", 0, NULL) < 0)
		finish(EXIT_SANDBOX);

	verbose = exists("/ufcfg/verbose");
	step("init started");

	size_t argv_len = 0, env_len = 0;
	char *argv_buf = read_file("/ufcfg/argv", &argv_len);
	char *env_buf = read_file("/ufcfg/env", &env_len);
	char *cwd = read_file("/ufcfg/cwd", NULL);
	char *shares = read_file("/ufcfg/shares", NULL);
	char *p9opts = read_file("/ufcfg/p9opts", NULL);
	char *net = read_file("/ufcfg/net", NULL);
	char *winsize = read_file("/ufcfg/tty", NULL);
	bool tty = winsize != NULL;
	if (!argv_buf || argv_len == 0) {
		say("sandbox: no command given (/ufcfg/argv missing or empty)");
		finish(EXIT_SANDBOX);
	}
	char **argv = split_nul(argv_buf, argv_len);
	char *default_env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			       "HOME=/root", NULL};
	char **envv = env_buf ? split_nul(env_buf, env_len) : default_env;
	if (!argv || !envv) {
		say("sandbox: out of memory");
		finish(EXIT_SANDBOX);
	}
	if (p9opts) {
		char *nl = strchr(p9opts, '\n');
		if (nl)
			*nl = '\0';
	}
	if (cwd) {
		char *nl = strchr(cwd, '\n');
		if (nl)
			*nl = '\0';
	}

	if (load_modules(net) < 0)
		finish(EXIT_SANDBOX);

	if (wait_for(HVC, 10000) < 0) {
		say("sandbox: %s did not appear (virtio console)", HVC);
		finish(EXIT_SANDBOX);
	}
	int hvc = open(HVC, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (hvc < 0) {
		say("sandbox: open %s: %s", HVC, strerror(errno));
		finish(EXIT_SANDBOX);
	}
	set_console_mode(hvc, tty, winsize);

	if (mount_newroot(p9opts) < 0)
		finish(EXIT_SANDBOX);
	if (shares && mount_shares(shares) < 0)
		finish(EXIT_SANDBOX);
	if (!exists(NEWROOT "/dev/kvm")) {
		say("sandbox: no /dev/kvm inside the sandbox after loading kvm and kvm_amd");
		finish(EXIT_SANDBOX);
	}
	if (setup_net(net != NULL) < 0)
		finish(EXIT_SANDBOX);
	step("network up%s", net ? " (lo, eth0 10.0.2.15/24)" : " (lo)");

	step("starting %s", argv[0]);
	pid_t pid = fork();
	if (pid < 0) {
		say("sandbox: fork: %s", strerror(errno));
		finish(EXIT_SANDBOX);
	}
	if (pid == 0)
		run_cmd(argv, envv, cwd && *cwd ? cwd : "/", hvc, tty);

	say("UNIFORK-SANDBOX-ALIVE %.0f", uptime_s());   /* CMD started */
	start_heartbeat();
	int status = EXIT_SANDBOX;
	for (;;) {
		int ws;
		pid_t r = waitpid(-1, &ws, 0);
		if (r < 0) {
			if (errno == EINTR) {
				if (alive_due) {
					alive_due = 0;
					say("UNIFORK-SANDBOX-ALIVE %.0f", uptime_s());
				}
				continue;
			}
			say("sandbox: waitpid: %s", strerror(errno));
			break;
		}
		if (r != pid)
			continue; /* an orphan re-parented to us */
		if (WIFEXITED(ws))
			status = WEXITSTATUS(ws);
		else if (WIFSIGNALED(ws))
			status = 128 + WTERMSIG(ws);
		break;
	}
	step("%s ended with status %d", argv[0], status);
	tcdrain(hvc);
	close(hvc);
	finish(status);
}
