/*
 * Private to cfg.c and cfg_feed.c: the key tables and the machinery that applies them.
 * Every setting is described once (name, kind, place, bounds, default) and the loader, the
 * defaults, the comparison for reload and the destructor are all driven by that description.
 */
#ifndef WSBEAT_CFG_INTERNAL_H
#define WSBEAT_CFG_INTERNAL_H

#include <libconfig.h>
#include <stddef.h>

#include "wsbeat/cfg.h"
#include "wsbeat/match.h"
#include "wsbeat/tmpl.h"

#define CFG_PATH_MAX 256
/* A command (connect_command) has at most this many strings, the program included. */
#define CFG_ARGV_MAX 64

/* Unit helpers so the tables read like the documentation. */
#define MSECS(n) ((double)(n))
#define SECS(n)  ((double)(n)*1000.0)
#define MINS(n)  ((double)(n)*60000.0)
#define HOURS(n) ((double)(n)*3600000.0)

/* A field of type T at byte offset off of base. */
#define CFG_FIELD(base, off, T) ((T *)(void *)((char *)(base) + (off)))

enum cfg_kind {
	K_DUR,      /* int64_t milliseconds */
	K_INT,      /* int */
	K_U32,      /* uint32_t */
	K_SIZE,     /* size_t */
	K_DBL,      /* double */
	K_BOOL,     /* bool */
	K_ENUM,     /* enum stored as int; names[] indexed by value */
	K_STR,      /* char *, checked according to flags */
	K_TMPL,     /* struct tmpl *, allowing the TMPL_* in allow */
	K_MATCH,    /* struct match *: a string or a list of strings; values allow allow */
	K_STEPS,    /* struct cfg_step * plus size_t count at off2 (on_open) */
	K_REPLIES,  /* struct cfg_reply * plus size_t count at off2 */
	K_HEADERS,  /* struct cfg_header * plus size_t count at off2 */
	K_URL,      /* struct url; its path as a template (struct tmpl *) at off2 */
	K_ARGV,     /* char **, NULL-terminated: a command and its arguments (F_EXEC: argv[0]) */
	K_NAME,     /* char *, a feed name */
	K_LISTEN,   /* char *, "ADDR:PORT" */
	K_PROXY,    /* struct proxy_setting: "" (direct) or "http://[USER:PASSWORD@]HOST:PORT" */
	K_GROUP,    /* nested table at off */
	K_EXTERNAL, /* handled by the caller (top-level feeds and defaults) */
};

enum cfg_flag {
	F_REQUIRED = 1 << 0,    /* must be present in the group it belongs to */
	F_NO_DEFAULTS = 1 << 1, /* per feed only */
	F_TOKEN = 1 << 2,       /* an HTTP token */
	F_NO_CRLF = 1 << 3,     /* will become a header value */
	F_NONEMPTY = 1 << 4,
	F_FILE = 1 << 5, /* a readable file; relative paths resolve against the config's dir */
	F_DIR = 1 << 6,  /* a readable directory; same resolution */
	F_PATH = 1 << 7, /* a path we will create later; resolved but not checked */
	F_HOSTNAME = 1 << 8,
	F_DNS_SERVERS = 1 << 9, /* "ip[:port],..." */
	F_EXEC = 1 << 10,       /* K_ARGV: argv[0] is an executable file, resolved like F_FILE */
	F_SHARD = 1 << 15,      /* "K/N" */
};

struct cfg_key {
	const char *name;
	enum cfg_kind kind;
	size_t off;  /* into the destination struct */
	size_t off2; /* length or count, for K_BYTES, K_STRLIST, K_HEADERS */
	unsigned flags;
	double min, max; /* milliseconds for K_DUR */
	bool min_excl;   /* min is exclusive: "> min" */
	double def;      /* default for numbers, bools and enums; strings default to NULL */
	unsigned allow;  /* K_TMPL, K_MATCH: the TMPL_* allowed */
	const char *const *names;  /* K_ENUM */
	const struct cfg_key *sub; /* K_GROUP, terminated by a NULL name */
};

/* One table row per line; clang-format is switched off around the tables to keep them so. */
#define KEY_DUR(n, o, lo, excl, hi, d)                                                             \
	{                                                                                          \
		.name = n, .kind = K_DUR, .off = o, .min = lo, .min_excl = excl, .max = hi,        \
		.def = d                                                                           \
	}
#define KEY_NUM(n, k, o, lo, hi, d)                                                                \
	{                                                                                          \
		.name = n, .kind = k, .off = o, .min = lo, .max = hi, .def = d                     \
	}
#define KEY_BOOL(n, o, d)                                                                          \
	{                                                                                          \
		.name = n, .kind = K_BOOL, .off = o, .def = d                                      \
	}
#define KEY_ENUM(n, o, d, names_)                                                                  \
	{                                                                                          \
		.name = n, .kind = K_ENUM, .off = o, .def = d, .names = names_                     \
	}
#define KEY_STR(n, k, o, fl)                                                                       \
	{                                                                                          \
		.name = n, .kind = k, .off = o, .flags = fl                                        \
	}
#define KEY_VEC(n, k, o, o2)                                                                       \
	{                                                                                          \
		.name = n, .kind = k, .off = o, .off2 = o2                                         \
	}
#define KEY_TMPL(n, k, o, allow_)                                                                  \
	{                                                                                          \
		.name = n, .kind = k, .off = o, .allow = allow_                                    \
	}
#define KEY_GROUP(n, o, sub_)                                                                      \
	{                                                                                          \
		.name = n, .kind = K_GROUP, .off = o, .sub = sub_                                  \
	}
#define KEY_END                                                                                    \
	{                                                                                          \
		.name = NULL                                                                       \
	}

/* Where messages go and how relative paths resolve, for one load. */
struct cfg_ctx {
	const char *name;    /* stands for the file when libconfig does not know it */
	const char *basedir; /* absolute directory of the config file, NULL = keep paths as given */
	struct tmpl_env tenv; /* where templates find their secret sources */
	char *err;
	size_t errlen;
};

enum cfg_level { LVL_TOP, LVL_DEFAULTS, LVL_FEED };

extern const struct cfg_key cfg_feed_keys[];
extern const char *const cfg_log_level_names[];
extern const char *const cfg_hb_type_names[];
extern const char *const cfg_sink_type_names[];
extern const char *const cfg_decompress_names[];

/* Writes "FILE:LINE: path: message" into ctx->err and returns -1. */
int cfg_err(const struct cfg_ctx *x, const config_setting_t *s, const char *path, const char *fmt,
            ...) __attribute__((format(printf, 4, 5)));

/* Joins parent and child into buf as "parent.child" (or "child" at the top). */
const char *cfg_path_join(char *buf, const char *parent, const char *child);

void cfg_keys_init(const struct cfg_key *keys, void *base);
int cfg_keys_apply(const struct cfg_ctx *x, const struct cfg_key *keys, const config_setting_t *g,
                   void *base, const char *path, enum cfg_level lvl);
int cfg_keys_required(const struct cfg_ctx *x, const struct cfg_key *keys,
                      const config_setting_t *g, const char *path);
void cfg_keys_free(const struct cfg_key *keys, void *base);
bool cfg_keys_equal(const struct cfg_key *keys, const void *a, const void *b);

/* Converts one setting into its field; bounds and flags are checked. */
int cfg_value_set(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *s,
                  void *base, const char *path, enum cfg_level lvl);

/* Renders milliseconds the way a user would write them: "24h", "90s", "250ms". */
void cfg_fmt_ms(char *buf, size_t n, int64_t ms);
void cfg_headers_free(struct cfg_header *h, size_t n);
void cfg_argv_free(char **v);

static inline char tolower_ascii(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Converts and checks a K_HEADERS group into base's header array (in cfg_feed.c). */
int cfg_headers_set(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *g,
                    void *base, const char *path);

/* The dialect kinds (cfg_dialect.c): templates, matches, the open sequence, replies. */
int cfg_tmpl_set(const struct cfg_ctx *x, const config_setting_t *s, unsigned allow,
                 struct tmpl **dst, const char *path);
int cfg_match_set(const struct cfg_ctx *x, const config_setting_t *s, unsigned allow,
                  struct match **dst, const char *path);
int cfg_steps_set(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *s,
                  void *base, const char *path);
int cfg_replies_set(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *s,
                    void *base, const char *path);
void cfg_steps_free(struct cfg_step *v, size_t n);
void cfg_replies_free(struct cfg_reply *v, size_t n);
bool cfg_steps_equal(const struct cfg_step *a, const struct cfg_step *b, size_t n);
bool cfg_replies_equal(const struct cfg_reply *a, const struct cfg_reply *b, size_t n);
/* Checks url.path for templates (only in the query) and compiles it when it has any. */
int cfg_url_tmpl(const struct cfg_ctx *x, const config_setting_t *s, const char *text,
                 struct tmpl **dst, const char *path);
/* Type name of a setting, for messages ("a string", "a list", ...). */
const char *cfg_type_name(const config_setting_t *s);

/* Loads the top-level hosts list into c (cfg_hosts.c); hs may be NULL (none). */
int cfg_hosts_load(const struct cfg_ctx *x, const config_setting_t *hs, struct cfg *c);
void cfg_hosts_free(struct cfg *c);

/* Builds feed number idx from its group and the defaults group (may be NULL). */
int cfg_feed_load(const struct cfg_ctx *x, const config_setting_t *fs, const config_setting_t *ds,
                  size_t idx, struct cfg_feed *f);

#endif
