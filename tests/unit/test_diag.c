/* test_diag.c — the agent's diagnostics (guest-agent/handler_diag.c). */
#include "guest-agent/handler.h"
#include "tests/unit/ut.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct agent_reply call(const char *req)
{
	struct agent_call c = {.call_id = "t", .event = (const uint8_t *)req, .len = strlen(req),
			       .content_type = AGENT_DIAG_CONTENT_TYPE};
	struct agent_reply r = {.status = 200};
	UT_EQ(agent_handler_echo.invoke(&c, &r), 0);
	return r;
}

static int body_is(const struct agent_reply *r, const char *s)
{
	return r->body_len == strlen(s) && memcmp(r->body, s, r->body_len) == 0;
}

UT_TEST(diag_rand_time_and_store)
{
	char dir[] = "/tmp/uf-diag-test.XXXXXX";
	UT_ASSERT(mkdtemp(dir));
	agent_diag_dir = dir;

	struct agent_reply a = call("rand 16"), b = call("rand 16");
	UT_EQ(a.status, 200);
	UT_EQ(a.body_len, 32);
	UT_ASSERT(memcmp(a.body, b.body, 32) != 0);
	free(a.body), free(b.body);

	struct agent_reply t = call("time");
	UT_EQ(t.status, 200);
	UT_ASSERT(t.body_len >= 19);     /* ns since 1970: 19 digits */
	free(t.body);

	struct agent_reply g = call("get k1");
	UT_EQ(g.status, 404);
	free(g.body);
	struct agent_reply s = call("set k1 value-1");
	UT_EQ(s.status, 200);
	free(s.body);
	g = call("get k1");
	UT_EQ(g.status, 200);
	UT_ASSERT(body_is(&g, "value-1"));
	free(g.body);

	/* Keys cannot climb out of the directory. */
	struct agent_reply bad = call("set ../x y");
	UT_EQ(bad.status, 400);
	free(bad.body);
	bad = call("rand 257");
	UT_EQ(bad.status, 400);
	free(bad.body);
	bad = call("nonsense");
	UT_EQ(bad.status, 400);
	free(bad.body);

	char path[64];
	snprintf(path, sizeof path, "%s/k1", dir);
	unlink(path);
	rmdir(dir);
}

UT_TEST(echo_without_diag_type_echoes_diag_words)
{
	struct agent_call c = {.call_id = "t", .event = (const uint8_t *)"time", .len = 4, .content_type = ""};
	struct agent_reply r = {.status = 200};
	UT_EQ(agent_handler_echo.invoke(&c, &r), 0);
	UT_ASSERT(body_is(&r, "time"));
	free(r.body);
}
