/* test_gateway_buf.c — gateway/buf: growth, printf, consume, sticky errors;
 * and backend.h/server.h compile as the contract runtimed includes. */
#include "gateway/backend.h"
#include "gateway/buf.h"
#include "gateway/server.h"
#include "tests/unit/ut.h"

#include <errno.h>
#include <string.h>

UT_TEST(gateway_buf_grows_and_formats)
{
	struct gw_buf b;
	gw_buf_init(&b);
	for (int i = 0; i < 1000; i++)
		gw_buf_printf(&b, "%d,", i);
	UT_EQ(gw_buf_error(&b), 0);
	UT_ASSERT(b.len > 1000);
	UT_ASSERT(memcmp(b.data, "0,1,2,", 6) == 0);
	UT_ASSERT(memcmp(b.data + b.len - 4, "999,", 4) == 0);
	char big[1000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	size_t before = b.len;
	gw_buf_printf(&b, "<%s>", big);            /* longer than the stack buffer */
	UT_EQ(b.len, before + 1001);
	UT_EQ(b.data[before], '<');
	UT_EQ(b.data[b.len - 1], '>');
	gw_buf_consume(&b, 2);
	UT_ASSERT(memcmp(b.data, "1,2,", 4) == 0);
	gw_buf_consume(&b, b.len + 5);
	UT_EQ(b.len, 0);
	gw_buf_free(&b);
	UT_ASSERT(b.data == NULL);
}

UT_TEST(gateway_buf_error_is_sticky)
{
	struct gw_buf b;
	gw_buf_init(&b);
	gw_buf_puts(&b, "ok");
	UT_ASSERT(gw_buf_reserve(&b, GW_BUF_MAX) == NULL);
	UT_EQ(gw_buf_error(&b), -E2BIG);
	gw_buf_puts(&b, "more");
	UT_EQ(b.len, 2);
	gw_buf_reset(&b);
	UT_EQ(gw_buf_error(&b), 0);
	gw_buf_puts(&b, "again");
	UT_EQ(b.len, 5);
	gw_buf_free(&b);
}
