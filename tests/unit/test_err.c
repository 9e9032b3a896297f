/* test_err.c — the VMM library's error context (vmm/err.c). */
#include "tests/unit/ut.h"
#include "vmm/err.h"

#include <errno.h>
#include <string.h>

UT_TEST(err_wraps_its_own_context)
{
	UT_EQ(vmm_errno(-ETIMEDOUT, "post-clone fixup"), -ETIMEDOUT);
	UT_EQ(vmm_err(-ETIMEDOUT, "clone: %s", vmm_strerror()), -ETIMEDOUT);
	UT_EQ(vmm_err(-ETIMEDOUT, "build: %s", vmm_strerror()), -ETIMEDOUT);
	const char *want = "build: clone: post-clone fixup: Connection timed out";
	if (strcmp(vmm_strerror(), want) != 0)
		UT_FAIL("got '%s', want '%s'", vmm_strerror(), want);
}

UT_TEST(err_truncates_long_context_and_keeps_it_terminated)
{
	char big[2000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	vmm_errno(-EINVAL, "%s", big);
	size_t n = strlen(vmm_strerror());
	UT_ASSERT(n > 0 && n < sizeof(big));
	UT_ASSERT(strspn(vmm_strerror(), "x") == n);
	/* wrapping a full buffer keeps the outer words */
	vmm_err(-EINVAL, "outer: %s", vmm_strerror());
	UT_ASSERT(strncmp(vmm_strerror(), "outer: xxx", 10) == 0);
}
