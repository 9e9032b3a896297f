/* test_cli_config.c — the CLI's server address forms, token lookup, and the
 * package writer's edge cases (long ustar names, refused entries) checked
 * with tar(1). */
#include "tests/unit/ut.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/config.h"
#include "cli/pack.h"
#include "tests/unit/test_cli_fake.h"

UT_TEST(cli_target_forms)
{
	static const struct {
		const char *in;
		const char *host, *port, *hostport, *prefix, *url;
	} ok[] = {
		{ "127.0.0.1:8080", "127.0.0.1", "8080", "127.0.0.1:8080", "", "http://127.0.0.1:8080" },
		{ "http://localhost", "localhost", "8080", "localhost:8080", "", "http://localhost:8080" },
		{ "HTTP://h:1/", "h", "1", "h:1", "", "http://h:1" },
		{ ":9000", "127.0.0.1", "9000", "127.0.0.1:9000", "", "http://127.0.0.1:9000" },
		{ "[::1]:81/a/b//", "::1", "81", "[::1]:81", "/a/b", "http://[::1]:81/a/b" },
		{ "h/p", "h", "8080", "h:8080", "/p", "http://h:8080/p" },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct cli_target t;
		if (cli_target_parse(ok[i].in, &t) != 0)
			UT_FAIL("%s refused", ok[i].in);
		UT_ASSERT(strcmp(t.host, ok[i].host) == 0);
		UT_ASSERT(strcmp(t.port, ok[i].port) == 0);
		UT_ASSERT(strcmp(t.hostport, ok[i].hostport) == 0);
		UT_ASSERT(strcmp(t.prefix, ok[i].prefix) == 0);
		UT_ASSERT(strcmp(t.url, ok[i].url) == 0);
	}
	static const char *const bad[] = { "https://h", "ftp://h", "h:0", "h:65536", "h:", "h:x",
					   "[::1", "[]:1", "h:1x", "h u:1", "h:1/a b", "u@h:1",
					   "h:123456" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cli_target t;
		if (cli_target_parse(bad[i], &t) != -EINVAL)
			UT_FAIL("%s accepted", bad[i]);
	}
	/* NULL: $UNIFORK_LISTEN, else the default */
	struct cli_target t;
	unsetenv("UNIFORK_LISTEN");
	UT_EQ(cli_target_parse(NULL, &t), 0);
	UT_ASSERT(strcmp(t.url, "http://" CLI_DEFAULT_ADDR) == 0);
	setenv("UNIFORK_LISTEN", "10.1.2.3:7", 1);
	UT_EQ(cli_target_parse(NULL, &t), 0);
	UT_ASSERT(strcmp(t.url, "http://10.1.2.3:7") == 0);
}

UT_TEST(cli_token_file_rules)
{
	char *root = fake_tmpdir();
	char tok[CLI_TOKEN_MAX + 1], file[4200];
	enum cli_token_src src;
	setenv("UNIFORK_DATA", root, 1);
	unsetenv("UNIFORK_TOKEN");

	/* no file: no token, not an error */
	UT_EQ(cli_token_resolve(NULL, tok, sizeof(tok), file, sizeof(file), &src), 0);
	UT_EQ(src, CLI_TOKEN_NONE);
	UT_ASSERT(tok[0] == '\0');

	fake_write(root, "token", "\r\n abc123 \r\n", 12, 0600);
	UT_EQ(cli_token_resolve(NULL, tok, sizeof(tok), file, sizeof(file), &src), 0);
	UT_EQ(src, CLI_TOKEN_FILE);
	UT_ASSERT(strcmp(tok, "abc123") == 0);
	UT_ASSERT(strstr(file, "/token") && strncmp(file, root, strlen(root)) == 0);

	fake_write(root, "token", "a\nb", 3, 0600); /* a line break inside */
	UT_EQ(cli_token_resolve(NULL, tok, sizeof(tok), file, sizeof(file), &src), -EINVAL);
	fake_write(root, "token", "\n", 1, 0600); /* empty */
	UT_EQ(cli_token_resolve(NULL, tok, sizeof(tok), file, sizeof(file), &src), -EINVAL);
	char *big = malloc(CLI_TOKEN_MAX + 2);
	memset(big, 'x', CLI_TOKEN_MAX + 2);
	fake_write(root, "token", big, CLI_TOKEN_MAX + 2, 0600);
	UT_EQ(cli_token_resolve(NULL, tok, sizeof(tok), file, sizeof(file), &src), -EFBIG);
	free(big);
	fake_sh("chmod 000 '%s/token'", root);
	if (geteuid() != 0) /* root reads anything */
		UT_EQ(cli_token_resolve(NULL, tok, sizeof(tok), file, sizeof(file), &src), -EACCES);

	/* the environment beats the file, the flag beats both */
	setenv("UNIFORK_TOKEN", "envtok", 1);
	UT_EQ(cli_token_resolve(NULL, tok, sizeof(tok), file, sizeof(file), &src), 0);
	UT_EQ(src, CLI_TOKEN_ENV);
	UT_ASSERT(strcmp(tok, "envtok") == 0);
	UT_EQ(cli_token_resolve("flag", tok, sizeof(tok), file, sizeof(file), &src), 0);
	UT_EQ(src, CLI_TOKEN_FLAG);
	UT_ASSERT(strcmp(tok, "flag") == 0);
	UT_EQ(cli_token_resolve("a\x7f", tok, sizeof(tok), file, sizeof(file), &src), -EINVAL);
	fake_rmtree(root);
	free(root);
}

static int pack_to(const char *dir, const char *out_file, struct cli_pack_stats *st)
{
	struct cli_buf b = {0};
	int r = cli_pack_path(dir, &b, st);
	if (r == 0) {
		FILE *f = fopen(out_file, "w");
		UT_ASSERT(f && fwrite(b.data, 1, b.len, f) == b.len && fclose(f) == 0);
		UT_EQ(st->bytes_out, b.len);
	}
	cli_buf_free(&b);
	return r;
}

UT_TEST(cli_pack_long_names_and_stats)
{
	char *root = fake_tmpdir();
	char dir[4096], rel[512], pkg[4200];
	snprintf(dir, sizeof(dir), "%s/src", root);
	/* 99-byte name in a 120-byte directory path: needs ustar's prefix field */
	char seg[61];
	memset(seg, 'd', 60);
	seg[60] = '\0';
	char leaf[100];
	memset(leaf, 'f', 99);
	leaf[99] = '\0';
	snprintf(rel, sizeof(rel), "%s/%s/%s", seg, seg, leaf);
	fake_write(dir, rel, "deep", 4, 0755);
	fake_write(dir, "a", "1", 1, 0644);
	snprintf(pkg, sizeof(pkg), "%s/p.tar.gz", root);
	struct cli_pack_stats st;
	UT_EQ(pack_to(dir, pkg, &st), 0);
	UT_EQ(st.files, 2);
	UT_EQ(st.dirs, 2);
	UT_EQ(st.bytes_in, 5);
	UT_EQ(st.prebuilt, 0);
	UT_EQ(fake_sh("cd '%s' && mkdir out && tar -xzf p.tar.gz -C out && "
		      "diff -r src out && test -x 'out/%s'", root, rel), 0);
	UT_EQ(fake_sh("cd '%s' && test \"$(tar --numeric-owner -tvzf p.tar.gz | awk '{print $2}' "
		      "| sort -u)\" = 0/0", root), 0);

	/* a path no ustar header can hold is refused, not truncated */
	char longleaf[120];
	memset(longleaf, 'g', 119);
	longleaf[119] = '\0';
	snprintf(rel, sizeof(rel), "x/%s", longleaf);
	fake_write(dir, rel, "x", 1, 0644);
	struct cli_buf b = {0};
	UT_EQ(cli_pack_path(dir, &b, &st), -ENAMETOOLONG);
	cli_buf_free(&b);
	fake_rmtree(root);
	free(root);
}

UT_TEST(cli_pack_symlink_rules)
{
	static const struct {
		const char *link, *target;
		int ok;
	} cases[] = {
		/* the guest agent's rule: relative, no ".." component */
		{ "l", "a", 1 },
		{ "l", "sub/b", 1 },
		{ "sub/l", "./b", 1 },
		{ "sub/l", "..b/..c", 1 },
		{ "sub/l", "../a", 0 },
		{ "sub/l", "./../sub/b", 0 },
		{ "sub/l", "b/..", 0 },
		{ "l", "/etc/passwd", 0 },
		{ "l", "..", 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *root = fake_tmpdir();
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/src", root);
		fake_write(dir, "a", "1", 1, 0644);
		fake_write(dir, "sub/b", "2", 1, 0644);
		UT_EQ(fake_sh("ln -s '%s' '%s/%s'", cases[i].target, dir, cases[i].link), 0);
		struct cli_buf b = {0};
		struct cli_pack_stats st;
		int r = cli_pack_path(dir, &b, &st);
		if ((r == 0) != cases[i].ok || (!cases[i].ok && r != -EXDEV))
			UT_FAIL("case %zu (%s -> %s): %d", i, cases[i].link, cases[i].target, r);
		if (r == 0)
			UT_EQ(st.symlinks, 1);
		cli_buf_free(&b);
		fake_rmtree(root);
		free(root);
	}
}
