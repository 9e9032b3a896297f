/* test_sched_spec.c — the scheduler's knobs at the edges: weight and
 * tenant in the deploy JSON, PUT .../pool and spec.json; runtimed's
 * scheduler flags. */
#include "gateway/spec.h"
#include "runtimed/config.h"
#include "runtimed/spec.h"
#include "tests/unit/ut.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int parse(struct gw_spec *s, const char *json)
{
	char err[256];
	return gw_spec_parse(s, "fn", json, strlen(json), err, sizeof(err));
}

UT_TEST(sched_spec_weight_and_tenant)
{
	struct gw_spec s;
	UT_EQ(parse(&s, "{\"runtime\":\"native\",\"code\":\"AA==\"}"), 0);
	UT_EQ(s.fs.weight, 1u);
	UT_ASSERT(s.fs.tenant == NULL);
	gw_spec_free(&s);
	UT_EQ(parse(&s, "{\"runtime\":\"native\",\"code\":\"AA==\",\"weight\":3,\"tenant\":\"team-a\"}"), 0);
	UT_EQ(s.fs.weight, 3u);
	UT_EQ(strcmp(s.fs.tenant, "team-a"), 0);
	/* Into runtimed's spec, its JSON, and back. */
	struct rt_spec r, back;
	UT_EQ(rt_spec_from_gw(&r, &s.fs), 0);
	gw_spec_free(&s);
	UT_EQ(strcmp(rt_spec_group(&r), "team-a"), 0);
	json_t *j = rt_spec_to_json(&r);
	UT_ASSERT(j != NULL);
	char err[128];
	UT_EQ(rt_spec_from_json(&back, j, err, sizeof(err)), 0);
	UT_EQ(back.weight, 3u);
	UT_EQ(strcmp(back.tenant, "team-a"), 0);
	rt_spec_free(&back);
	/* A spec.json from before weights: weight 1, its own group. */
	json_object_del(j, "weight");
	json_object_del(j, "tenant");
	UT_EQ(rt_spec_from_json(&back, j, err, sizeof(err)), 0);
	UT_EQ(back.weight, 1u);
	UT_EQ(strcmp(rt_spec_group(&back), back.name), 0);
	rt_spec_free(&back);
	/* A damaged one is refused. */
	json_object_set_new(j, "weight", json_integer(0));
	UT_ASSERT(rt_spec_from_json(&back, j, err, sizeof(err)) < 0);
	json_object_set_new(j, "weight", json_integer(2));
	json_object_set_new(j, "tenant", json_string("No Spaces"));
	UT_ASSERT(rt_spec_from_json(&back, j, err, sizeof(err)) < 0);
	json_decref(j);
	rt_spec_free(&r);
}

UT_TEST(sched_spec_bad_values_refused)
{
	static const char *const bad[] = {
		"{\"runtime\":\"native\",\"code\":\"AA==\",\"weight\":0}",
		"{\"runtime\":\"native\",\"code\":\"AA==\",\"weight\":1001}",
		"{\"runtime\":\"native\",\"code\":\"AA==\",\"weight\":\"3\"}",
		"{\"runtime\":\"native\",\"code\":\"AA==\",\"tenant\":\"\"}",
		"{\"runtime\":\"native\",\"code\":\"AA==\",\"tenant\":\"-x\"}",
		"{\"runtime\":\"native\",\"code\":\"AA==\",\"tenant\":\"Upper\"}",
		"{\"runtime\":\"native\",\"code\":\"AA==\",\"tenant\":7}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct gw_spec s;
		UT_ASSERT(parse(&s, bad[i]) == -EINVAL);
	}
}

UT_TEST(sched_spec_pool_update_weight)
{
	struct gw_pool_update u;
	char err[256];
	const char *ok = "{\"weight\":7}";
	UT_EQ(gw_pool_update_parse(&u, ok, strlen(ok), err, sizeof(err)), 0);
	UT_ASSERT(u.has_weight && !u.has_min_warm && !u.has_max_instances);
	UT_EQ(u.weight, 7u);
	const char *bad = "{\"weight\":0}";
	UT_ASSERT(gw_pool_update_parse(&u, bad, strlen(bad), err, sizeof(err)) < 0);
	/* The deploy body's pool object does not take a weight. */
	struct gw_spec s;
	UT_ASSERT(parse(&s, "{\"runtime\":\"native\",\"code\":\"AA==\",\"pool\":{\"weight\":2}}") < 0);
}

UT_TEST(sched_spec_flags)
{
	char a0[] = "runtimed", a1[] = "--sched", a2[] = "off", a3[] = "--slice-ms", a4[] = "20",
	     a5[] = "--queue-max", a6[] = "5", a7[] = "--max-instances", a8[] = "9",
	     a9[] = "--queue-timeout-ms", a10[] = "700", a11[] = "--kernel", a12[] = "/dev/null",
	     a13[] = "--initrd", a14[] = "/dev/null", a15[] = "--worker", a16[] = "/dev/null";
	char *argv[] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, NULL};
	struct rt_config c;
	UT_EQ(rt_config_parse(&c, 17, argv), 0);
	UT_ASSERT(c.sched_off);
	UT_EQ(c.slice_ms, 20u);
	UT_EQ(c.queue_max, 5u);
	UT_EQ(c.max_instances, 9u);
	UT_EQ(c.queue_timeout_ms, 700u);
	char *defaults[] = {a0, a11, a12, a13, a14, a15, a16, NULL};
	UT_EQ(rt_config_parse(&c, 7, defaults), 0);
	UT_ASSERT(!c.sched_off);
	UT_EQ(c.slice_ms, 50u);
	UT_EQ(c.queue_max, 256u);
	UT_EQ(c.queue_timeout_ms, 30000u);
	UT_EQ(c.max_instances, 0u);
	char b2[] = "fast";
	char *bad[] = {a0, a1, b2, a11, a12, a13, a14, a15, a16, NULL};
	UT_ASSERT(rt_config_parse(&c, 9, bad) < 0);
}
