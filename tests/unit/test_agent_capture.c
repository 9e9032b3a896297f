/* test_agent_capture.c — the agent's log caps (guest-agent/runtime_capture.h):
 * the tail buffer and the fd capture keep the newest bytes up to their cap
 * and, when output was dropped, start with one marker line that says how
 * many bytes are missing; nothing is marked when nothing was dropped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guest-agent/runtime_capture.h"
#include "tests/unit/ut.h"

static void pattern(uint8_t *p, size_t n, size_t from)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)('a' + (from + i) % 26);
}

/* out (len bytes) = marker + the newest bytes of a pattern of `total`
 * bytes; returns the number of bytes the marker says were dropped. */
static unsigned long long check_marked(const uint8_t *out, size_t len, size_t total)
{
	size_t ml = strlen(AGENT_LOG_MARKER);
	UT_ASSERT(len > ml && memcmp(out, AGENT_LOG_MARKER, ml) == 0);
	const uint8_t *nl = memchr(out, '\n', len);
	UT_ASSERT(nl != NULL);
	size_t k = (size_t)(nl - out) + 1;
	unsigned long long dropped = strtoull((const char *)out + ml, NULL, 10);
	UT_EQ(dropped + (len - k), total);       /* every byte accounted for */
	uint8_t *want = malloc(len - k);
	UT_ASSERT(want != NULL);
	pattern(want, len - k, total - (len - k));
	UT_ASSERT(memcmp(out + k, want, len - k) == 0);
	free(want);
	return dropped;
}

UT_TEST(agent_tail_cap_and_marker)
{
	struct agent_tail t;
	uint8_t in[5000], *out;
	size_t len;
	UT_EQ(agent_tail_init(&t, 256), 0);

	pattern(in, 100, 0);                    /* under the cap: as written */
	agent_tail_append(&t, in, 100);
	UT_EQ(agent_tail_take(&t, &out, &len), 0);
	UT_EQ(len, 100);
	UT_ASSERT(memcmp(out, in, 100) == 0);
	free(out);

	for (size_t off = 0; off < 5000; off += 700) {   /* over it, in pieces */
		size_t k = 5000 - off < 700 ? 5000 - off : 700;
		pattern(in, k, off);
		agent_tail_append(&t, in, k);
	}
	UT_EQ(agent_tail_take(&t, &out, &len), 0);
	UT_EQ(len, 256);
	UT_ASSERT(check_marked(out, len, 5000) > 5000 - 256);
	free(out);

	pattern(in, 10, 0);                     /* counted from the last take */
	agent_tail_append(&t, in, 10);
	UT_EQ(agent_tail_take(&t, &out, &len), 0);
	UT_EQ(len, 10);
	UT_ASSERT(memcmp(out, in, 10) == 0);
	free(out);

	pattern(in, 256, 0);                    /* exactly the cap: no marker */
	agent_tail_append(&t, in, 256);
	UT_EQ(agent_tail_take(&t, &out, &len), 0);
	UT_EQ(len, 256);
	UT_ASSERT(memcmp(out, in, 256) == 0);
	free(out);
	agent_tail_free(&t);
}

UT_TEST(agent_capture_cap_and_marker)
{
	struct agent_capture c = AGENT_CAPTURE_INIT;
	uint8_t in[3000], *out;
	size_t len;
	pattern(in, sizeof(in), 0);

	UT_EQ(agent_capture_begin(&c), 0);
	UT_EQ(write(1, in, 1000), 1000);
	UT_EQ(write(2, in + 1000, 2000), 2000);
	UT_EQ(agent_capture_end(&c, 512, &out, &len), 0);
	UT_EQ(len, 512);
	check_marked(out, len, 3000);
	free(out);

	UT_EQ(agent_capture_begin(&c), 0);     /* within the cap: unmarked */
	UT_EQ(write(1, in, 300), 300);
	UT_EQ(agent_capture_end(&c, 512, &out, &len), 0);
	UT_EQ(len, 300);
	UT_ASSERT(memcmp(out, in, 300) == 0);
	free(out);
	agent_capture_release(&c);
}

UT_TEST(agent_log_mark_small_buffers)
{
	uint8_t b[8];
	memset(b, 'x', sizeof(b));
	agent_log_mark(b, sizeof(b), 1000);     /* no room for the marker */
	for (size_t i = 0; i < sizeof(b); i++)
		UT_EQ(b[i], 'x');
	uint8_t big[200];
	pattern(big, sizeof(big), 0);
	agent_log_mark(big, sizeof(big), 0);    /* nothing dropped */
	uint8_t want[200];
	pattern(want, sizeof(want), 0);
	UT_ASSERT(memcmp(big, want, sizeof(big)) == 0);
}
