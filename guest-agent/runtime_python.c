/* runtime_python.c — the `python` runtime, built into its own shared
 * object (uf-runtime-python.so, linked against Debian's libpython3.11) that
 * the dispatcher dlopen()s only for python functions (runtime.h).
 *
 *   warm   CPython from an isolated PyConfig (no site, no bytecode writes,
 *          unbuffered stdio, no signal handlers; sys.path = [fn_dir,
 *          stdlib, stdlib/lib-dynload]), then the common stdlib modules
 *          below are imported: all of it before the runtime template's
 *          snapshot.
 *   load   Init.env into os.environ, then `import module` for Init.handler
 *          "module.function" (default handler.handle) from fn_dir: the
 *          function's import-time work lands in the function template.
 *   invoke handle(event: bytes, context: dict) -> bytes | str | anything
 *          json.dumps() takes.  context: call_id, content_type,
 *          deadline_ms, and two keys the handler may set: status (int,
 *          preset 200) and response_content_type (str).  An exception
 *          fails the call (502): its traceback goes to the logs, its last
 *          line to Result.error.
 *
 * The GIL is released between calls, so threads a handler starts run on.
 * After each Fixup (a new clone) `random` is reseeded from the fresh CRNG.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "guest-agent/runtime.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto/agent_msg.h"

static const char *const warm_modules[] = {
	"json", "traceback", "base64", "binascii", "datetime", "re", "collections", "functools",
	"itertools", "typing", "dataclasses", "enum", "math", "random", "struct", "time",
	"uuid", "hashlib", "urllib.parse", "io", "copy", "string",
};

static PyThreadState *main_ts;   /* the agent thread's state while the GIL is free */
static PyObject *json_dumps, *format_exception;
static PyObject *handler_fn;     /* the function's handle(), once loaded */
static char module_name[256];

/* "Type: message", the last line of the pending exception's traceback,
 * into err; the whole traceback to stderr (the call's or load's output). */
static void report_exception(char *err, size_t errlen, const char *prefix)
{
	PyObject *type, *value, *tb;
	PyErr_Fetch(&type, &value, &tb);
	PyErr_NormalizeException(&type, &value, &tb);
	if (tb && value)
		PyException_SetTraceback(value, tb);
	PyObject *lines = value && format_exception ? PyObject_CallOneArg(format_exception, value)
						    : NULL;
	PyObject *text = NULL;
	if (lines) {
		PyObject *empty = PyUnicode_FromString("");
		text = empty ? PyUnicode_Join(empty, lines) : NULL;
		Py_XDECREF(empty);
	}
	const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
	if (s) {
		fputs(s, stderr);
		fflush(stderr);
		/* The last non-empty line: "ValueError: boom". */
		size_t n = strlen(s);
		while (n && s[n - 1] == '\n')
			n--;
		size_t b = n;
		while (b && s[b - 1] != '\n')
			b--;
		snprintf(err, errlen, "%s%.*s", prefix, (int)(n - b), s + b);
	} else {
		PyErr_Clear();
		PyObject *str = value ? PyObject_Str(value) : NULL;
		const char *m = str ? PyUnicode_AsUTF8(str) : NULL;
		snprintf(err, errlen, "%s%s: %s", prefix,
			 type ? ((PyTypeObject *)type)->tp_name : "exception", m ? m : "?");
		Py_XDECREF(str);
		PyErr_Clear();
	}
	Py_XDECREF(text);
	Py_XDECREF(lines);
	Py_XDECREF(type);
	Py_XDECREF(value);
	Py_XDECREF(tb);
}

static int add_path(PyConfig *c, const char *dir, const char *sub)
{
	char p[4096];
	snprintf(p, sizeof p, "%s%s", dir, sub);
	wchar_t *w = Py_DecodeLocale(p, NULL);
	if (!w)
		return -ENOMEM;
	PyStatus st = PyWideStringList_Append(&c->module_search_paths, w);
	PyMem_RawFree(w);
	return PyStatus_Exception(st) ? -ENOMEM : 0;
}

static int py_warm(const struct agent_runtime_config *cfg, char *err, size_t errlen)
{
	static int started;     /* CPython starts once per process, even if it failed */
	if (started) {
		snprintf(err, errlen, "python: the runtime failed to start earlier");
		return -EIO;
	}
	started = 1;
	PyConfig c;
	PyConfig_InitIsolatedConfig(&c);
	c.site_import = 0;
	c.write_bytecode = 0;
	c.install_signal_handlers = 0;
	c.buffered_stdio = 0;
	c.pathconfig_warnings = 0;
	c.module_search_paths_set = 1;
	PyStatus st = PyConfig_SetBytesString(&c, &c.program_name, "unifork-agent");
	if (PyStatus_Exception(st) || add_path(&c, cfg->fn_dir, "") < 0 ||
	    add_path(&c, cfg->python_stdlib, "") < 0 ||
	    add_path(&c, cfg->python_stdlib, "/lib-dynload") < 0) {
		PyConfig_Clear(&c);
		snprintf(err, errlen, "python: configuration: out of memory");
		return -ENOMEM;
	}
	st = Py_InitializeFromConfig(&c);
	PyConfig_Clear(&c);
	if (PyStatus_Exception(st)) {
		snprintf(err, errlen, "python: cannot start CPython (stdlib in %s?): %s%s%s",
			 cfg->python_stdlib, st.func ? st.func : "", st.func ? ": " : "",
			 st.err_msg ? st.err_msg : "failed");
		return -EIO;
	}
	PyObject *tbmod = PyImport_ImportModule("traceback");
	format_exception = tbmod ? PyObject_GetAttrString(tbmod, "format_exception") : NULL;
	Py_XDECREF(tbmod);
	PyObject *jmod = format_exception ? PyImport_ImportModule("json") : NULL;
	json_dumps = jmod ? PyObject_GetAttrString(jmod, "dumps") : NULL;
	Py_XDECREF(jmod);
	int rc = 0;
	if (!json_dumps) {
		PyErr_Clear();
		snprintf(err, errlen, "python: the stdlib in %s lacks json or traceback",
			 cfg->python_stdlib);
		rc = -ENOENT;
	}
	for (size_t i = 0; rc == 0 && i < sizeof warm_modules / sizeof warm_modules[0]; i++) {
		PyObject *m = PyImport_ImportModule(warm_modules[i]);
		if (!m) {
			char what[96];
			snprintf(what, sizeof what, "python: warm-up import %s: ", warm_modules[i]);
			report_exception(err, errlen, what);
			rc = -ENOENT;
		}
		Py_XDECREF(m);
	}
	main_ts = PyEval_SaveThread();
	return rc;
}

static int valid_dotted(const char *s)
{
	int start = 1;
	if (!*s)
		return 0;
	for (; *s; s++) {
		if (*s == '.') {
			if (start)
				return 0;
			start = 1;
			continue;
		}
		if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (!start && *s >= '0' && *s <= '9')))
			return 0;
		start = 0;
	}
	return !start;
}

/* Init.env into os.environ (CPython copied the environment when it
 * started, maybe long before this Init).  *old gets a dict of the values
 * replaced (None: absent) for restore_environ(). */
static int set_environ(const struct agent_fn *fn, PyObject **old)
{
	PyObject *os = PyImport_ImportModule("os");
	PyObject *environ = os ? PyObject_GetAttrString(os, "environ") : NULL;
	*old = PyDict_New();
	int rc = environ && *old ? 0 : -1;
	for (size_t i = 0; rc == 0 && i < fn->n_env; i++) {
		PyObject *k = PyUnicode_DecodeFSDefault(fn->env[i].key);
		PyObject *v = PyUnicode_DecodeFSDefault(fn->env[i].value);
		PyObject *was = k ? PyObject_CallMethod(environ, "get", "O", k) : NULL;
		rc = k && v && was && PyDict_SetItem(*old, k, was) == 0 ? 0 : -1;
		if (rc == 0)
			rc = PyObject_SetItem(environ, k, v);
		Py_XDECREF(was);
		Py_XDECREF(k);
		Py_XDECREF(v);
	}
	Py_XDECREF(environ);
	Py_XDECREF(os);
	return rc;
}

static void restore_environ(PyObject *old)
{
	PyObject *os = old ? PyImport_ImportModule("os") : NULL;
	PyObject *environ = os ? PyObject_GetAttrString(os, "environ") : NULL;
	PyObject *k, *v;
	Py_ssize_t pos = 0;
	while (environ && PyDict_Next(old, &pos, &k, &v))
		if ((v == Py_None ? PyObject_DelItem(environ, k) : PyObject_SetItem(environ, k, v)) < 0)
			PyErr_Clear();
	PyErr_Clear();
	Py_XDECREF(environ);
	Py_XDECREF(os);
}

static int py_load(const struct agent_fn *fn, char *err, size_t errlen)
{
	const char *h = fn->handler[0] ? fn->handler : "handler.handle";
	const char *dot = strrchr(h, '.');
	int rc = 0;

	if (!main_ts || handler_fn) {
		snprintf(err, errlen, "python: %s", handler_fn ? "a function is already loaded"
							       : "the runtime is not started");
		return -EBUSY;
	}
	if (!dot || !valid_dotted(h) || (size_t)(dot - h) >= sizeof module_name) {
		snprintf(err, errlen, "python: handler '%.200s' must be module.function", h);
		return -EINVAL;
	}
	memcpy(module_name, h, (size_t)(dot - h));
	module_name[dot - h] = '\0';

	PyEval_RestoreThread(main_ts);
	main_ts = NULL;
	PyObject *mod = NULL, *fnobj = NULL, *old_env = NULL;
	if (set_environ(fn, &old_env) < 0) {
		report_exception(err, errlen, "python: setting os.environ: ");
		rc = -EINVAL;
		goto out;
	}
	PyObject *il = PyImport_ImportModule("importlib");
	PyObject *r = il ? PyObject_CallMethod(il, "invalidate_caches", NULL) : NULL;
	Py_XDECREF(r);
	Py_XDECREF(il);
	PyErr_Clear();
	mod = PyImport_ImportModule(module_name);
	if (!mod) {
		char what[320];
		snprintf(what, sizeof what, "python: import %s: ", module_name);
		report_exception(err, errlen, what);
		rc = -ENOEXEC;
		goto out;
	}
	fnobj = PyObject_GetAttrString(mod, dot + 1);
	if (!fnobj || !PyCallable_Check(fnobj)) {
		PyErr_Clear();
		snprintf(err, errlen, "python: module %s has no function %s", module_name, dot + 1);
		rc = -ENOEXEC;
		goto out;
	}
	handler_fn = fnobj;
	fnobj = NULL;
out:
	Py_XDECREF(fnobj);
	Py_XDECREF(mod);
	if (rc < 0) {      /* a later Init imports afresh, with its own env */
		PyObject *mods = PyImport_GetModuleDict();
		if (PyDict_DelItemString(mods, module_name) < 0)
			PyErr_Clear();
		restore_environ(old_env);
	}
	Py_XDECREF(old_env);
	main_ts = PyEval_SaveThread();
	return rc;
}

static PyObject *make_context(const struct agent_call *call)
{
	return Py_BuildValue("{s:s,s:s,s:K,s:i,s:O}", "call_id", call->call_id,
			     "content_type", call->content_type, "deadline_ms",
			     (unsigned long long)call->deadline_ms, "status", 200,
			     "response_content_type", Py_None);
}

/* The handler's return value as the body. */
static int to_body(PyObject *res, struct agent_reply *out, const char **ct)
{
	PyObject *json = NULL;
	const char *p;
	Py_ssize_t n;
	Py_buffer view;
	int have_view = 0;

	if (PyUnicode_Check(res)) {
		p = PyUnicode_AsUTF8AndSize(res, &n);
		*ct = "text/plain; charset=utf-8";
	} else if (PyObject_CheckBuffer(res)) {
		if (PyObject_GetBuffer(res, &view, PyBUF_CONTIG_RO) < 0)
			return -1;
		have_view = 1;
		p = view.buf;
		n = view.len;
		*ct = "application/octet-stream";
	} else {
		json = PyObject_CallOneArg(json_dumps, res);
		p = json ? PyUnicode_AsUTF8AndSize(json, &n) : NULL;
		*ct = "application/json";
	}
	int rc = -1;
	if (p && (size_t)n > UF_AGENT_MAX_PAYLOAD) {
		PyErr_Format(PyExc_ValueError, "response of %zd bytes is over 6 MiB", n);
	} else if (p) {
		out->body = malloc(n ? (size_t)n : 1);
		if (out->body) {
			memcpy(out->body, p, (size_t)n);
			out->body_len = (size_t)n;
			rc = 0;
		} else {
			PyErr_NoMemory();
		}
	}
	if (have_view)
		PyBuffer_Release(&view);
	Py_XDECREF(json);
	return rc;
}

static int py_invoke(const struct agent_call *call, struct agent_reply *out)
{
	if (!handler_fn) {
		snprintf(out->error, sizeof out->error, "python: no function loaded");
		return -ENOENT;
	}
	PyEval_RestoreThread(main_ts);
	main_ts = NULL;
	int rc = 0;
	const char *ct = NULL;
	PyObject *ctx = make_context(call);
	PyObject *ev = PyBytes_FromStringAndSize(call->len ? (const char *)call->event : "",
						 (Py_ssize_t)call->len);
	PyObject *res = ctx && ev ? PyObject_CallFunctionObjArgs(handler_fn, ev, ctx, NULL) : NULL;
	if (!res || to_body(res, out, &ct) < 0) {
		report_exception(out->error, sizeof out->error, "");
		rc = -EIO;
		goto out;
	}
	PyObject *st = PyDict_GetItemString(ctx, "status");       /* borrowed */
	long status = st && PyLong_Check(st) ? PyLong_AsLong(st) : -1;
	if (status < 100 || status > 599) {
		PyErr_Clear();
		snprintf(out->error, sizeof out->error,
			 "context['status'] must be an int in 100..599");
		rc = -EINVAL;
		goto out;
	}
	out->status = (uint32_t)status;
	PyObject *rct = PyDict_GetItemString(ctx, "response_content_type");
	const char *s = rct && PyUnicode_Check(rct) ? PyUnicode_AsUTF8(rct) : NULL;
	PyErr_Clear();
	snprintf(out->content_type, sizeof out->content_type, "%s", s ? s : ct);
out:
	Py_XDECREF(res);
	Py_XDECREF(ev);
	Py_XDECREF(ctx);
	main_ts = PyEval_SaveThread();
	return rc;
}

/* A new clone: `random` was seeded (from os.urandom) before the snapshot,
 * so every clone would draw the same numbers.  The CRNG has just been
 * reseeded with the host's entropy: seed again from it. */
static int py_after_fixup(void)
{
	if (!main_ts)
		return 0;
	PyEval_RestoreThread(main_ts);
	main_ts = NULL;
	int rc = 0;
	PyObject *mods = PyImport_GetModuleDict();
	PyObject *random = PyDict_GetItemString(mods, "random");   /* borrowed */
	if (random) {
		PyObject *r = PyObject_CallMethod(random, "seed", NULL);
		if (!r) {
			PyErr_Clear();
			rc = -EIO;
		}
		Py_XDECREF(r);
	}
	main_ts = PyEval_SaveThread();
	return rc;
}

static const struct agent_runtime python_runtime = {
	.abi = AGENT_RUNTIME_ABI,
	.name = "python",
	.capture_fds = 1,
	.warm = py_warm,
	.load = py_load,
	.invoke = py_invoke,
	.after_fixup = py_after_fixup,
};

__attribute__((visibility("default"))) const struct agent_runtime *agent_runtime_python_get(void)
{
	return &python_runtime;
}
