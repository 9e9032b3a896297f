/* fake_driver.h — what the tests and fuzzers that play a guest's virtio
 * driver share: writing a split-ring descriptor in little-endian layout. */
#ifndef TESTS_FAKE_DRIVER_H
#define TESTS_FAKE_DRIVER_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

/* One 16-byte descriptor at `d`: addr u64, len u32, flags u16, next u16. */
static inline void fake_desc_write(uint8_t *d, uint64_t addr, uint32_t len, uint16_t flags,
				   uint16_t next)
{
	uint64_t a = htole64(addr);
	uint32_t l = htole32(len);
	uint16_t f = htole16(flags), n = htole16(next);
	memcpy(d, &a, 8);
	memcpy(d + 8, &l, 4);
	memcpy(d + 12, &f, 2);
	memcpy(d + 14, &n, 2);
}

#endif
