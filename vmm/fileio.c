/* fileio.c — bounded whole-file reads. */
#include "vmm/fileio.h"
#include "vmm/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int vmm_read_file(const char *what, const char *path, uint64_t max, uint8_t **buf, size_t *len)
{
	int ret;
	*buf = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vmm_errno(-errno, "%s %s", what, path);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		ret = vmm_errno(-errno, "%s %s: stat", what, path);
		goto out_close;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		ret = vmm_err(-EFBIG, "%s %s: not a regular file of at most %llu bytes", what, path,
			      (unsigned long long)max);
		goto out_close;
	}
	size_t n = (size_t)st.st_size;
	uint8_t *b = malloc(n ? n : 1);
	if (!b) {
		ret = vmm_err(-ENOMEM, "%s %s: out of memory", what, path);
		goto out_close;
	}
	size_t off = 0;
	while (off < n) {
		ssize_t r = read(fd, b + off, n - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			ret = r < 0 ? vmm_errno(-errno, "%s %s: read", what, path)
				    : vmm_err(-EIO, "%s %s: shrank while reading", what, path);
			free(b);
			goto out_close;
		}
		off += (size_t)r;
	}
	*buf = b;
	*len = n;
	ret = 0;
out_close:
	close(fd);
	return ret;
}
