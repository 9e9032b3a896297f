/* ut.h — the unit-test harness: a test is a function registered with
 * UT_TEST(); each runs in a forked child under a timeout (a crash or hang
 * fails that test, not the run), and the runner closes with the standard
 * line "N passed, N failed".  `prog NAME` runs one test in-process (for gdb).
 */
#ifndef UT_H
#define UT_H

#include <stdio.h>
#include <stdlib.h>

struct ut_case {
	const char *name;
	void (*fn)(void);
};

#define UT_MAX_CASES 512
extern struct ut_case ut_cases[UT_MAX_CASES];
extern int ut_ncases;

#define UT_TEST(name)                                                         \
	static void ut_##name(void);                                          \
	__attribute__((constructor)) static void ut_reg_##name(void)          \
	{                                                                     \
		if (ut_ncases < UT_MAX_CASES)                                 \
			ut_cases[ut_ncases++] = (struct ut_case){#name, ut_##name}; \
	}                                                                     \
	static void ut_##name(void)

/* Failure ends the test's child process with a message naming the place. */
#define UT_FAIL(...)                                                          \
	do {                                                                  \
		fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);             \
		fprintf(stderr, __VA_ARGS__);                                 \
		fputc('\n', stderr);                                          \
		exit(1);                                                      \
	} while (0)

#define UT_ASSERT(cond)                                                       \
	do {                                                                  \
		if (!(cond))                                                  \
			UT_FAIL("assertion failed: %s", #cond);               \
	} while (0)

#define UT_EQ(a, b)                                                           \
	do {                                                                  \
		long long ut_a_ = (long long)(a), ut_b_ = (long long)(b);     \
		if (ut_a_ != ut_b_)                                           \
			UT_FAIL("%s == %s: %lld != %lld", #a, #b, ut_a_, ut_b_); \
	} while (0)

#endif
