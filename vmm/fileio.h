/* fileio.h — reading whole files the VMM is handed (kernels, initrds,
 * snapshot metadata), bounded and with one line of context on failure. */
#ifndef VMM_FILEIO_H
#define VMM_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Read all of regular file `path` (at most `max` bytes) into a malloc'd
 * *buf (the caller frees it; never NULL on success, even for an empty
 * file).  `what` names the file in the error context.  0, or -errno from
 * open/read, -EFBIG (not a regular file, or over max), -EIO (it shrank
 * while being read), -ENOMEM. */
int vmm_read_file(const char *what, const char *path, uint64_t max, uint8_t **buf, size_t *len)
	__attribute__((warn_unused_result));

#endif
