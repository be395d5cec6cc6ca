#include "tmpl.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
        char *buf;
        size_t len, cap;
} strbuf_t;

static int sb_append(strbuf_t *sb, const char *s, size_t n) {
        if (sb->len + n + 1 > sb->cap) {
                size_t cap = sb->cap ? sb->cap : 1024;
                while (sb->len + n + 1 > cap)
                        cap *= 2;
                char *nb = realloc(sb->buf, cap);
                if (!nb)
                        return -ENOMEM;
                sb->buf = nb;
                sb->cap = cap;
        }
        memcpy(sb->buf + sb->len, s, n);
        sb->len += n;
        sb->buf[sb->len] = 0;
        return 0;
}

static int sb_append_escaped(strbuf_t *sb, const char *s) {
        int r = 0;

        for (; *s && r == 0; s++) {
                switch (*s) {
                case '&': r = sb_append(sb, "&amp;", 5); break;
                case '<': r = sb_append(sb, "&lt;", 4); break;
                case '>': r = sb_append(sb, "&gt;", 4); break;
                case '"': r = sb_append(sb, "&quot;", 6); break;
                case '\'': r = sb_append(sb, "&apos;", 6); break;
                default: r = sb_append(sb, s, 1); break;
                }
        }
        return r;
}

static const sf_tmpl_var_t *find_var(const sf_tmpl_var_t *vars, size_t nvars, const char *name, size_t n) {
        for (size_t i = 0; i < nvars; i++)
                if (strlen(vars[i].name) == n && strncmp(vars[i].name, name, n) == 0)
                        return &vars[i];
        return NULL;
}

static size_t line_of(const char *start, const char *at) {
        size_t line = 1;
        for (const char *p = start; p < at; p++)
                line += *p == '\n';
        return line;
}

int sf_tmpl_render(const char *tmpl, const sf_tmpl_var_t *vars, size_t nvars, char **ret) {
        strbuf_t sb = {0};
        const char *p = tmpl;
        int r = 0;

        if (!tmpl || !ret)
                return -EINVAL;
        r = sb_append(&sb, "", 0); /* an empty template renders as "" not NULL */
        while (r == 0 && *p) {
                const char *open = strstr(p, "{{");
                if (!open) {
                        r = sb_append(&sb, p, strlen(p));
                        break;
                }
                r = sb_append(&sb, p, (size_t)(open - p));
                if (r < 0)
                        break;
                bool raw = open[2] == '{';
                const char *name = open + (raw ? 3 : 2);
                const char *close = strstr(name, raw ? "}}}" : "}}");
                if (!close) {
                        log_err("template: unterminated tag at line %zu", line_of(tmpl, open));
                        r = -EINVAL;
                        break;
                }
                /* Allow {{ name }} with spaces; reject anything else odd inside the tag. */
                const char *ns = name, *ne = close;
                while (ns < ne && *ns == ' ')
                        ns++;
                while (ne > ns && ne[-1] == ' ')
                        ne--;
                size_t n = (size_t)(ne - ns);
                if (n == 0 || memchr(ns, '{', n) || memchr(ns, '}', n) || memchr(ns, '\n', n)) {
                        log_err("template: malformed tag at line %zu", line_of(tmpl, open));
                        r = -EINVAL;
                        break;
                }
                const sf_tmpl_var_t *v = find_var(vars, nvars, ns, n);
                if (!v) {
                        log_err("template: unknown variable '%.*s' at line %zu", (int)n, ns,
                                line_of(tmpl, open));
                        r = -EINVAL;
                        break;
                }
                const char *val = v->value ? v->value : "";
                r = raw ? sb_append(&sb, val, strlen(val)) : sb_append_escaped(&sb, val);
                p = close + (raw ? 3 : 2);
        }
        if (r < 0) {
                free(sb.buf);
                return r;
        }
        *ret = sb.buf;
        return 0;
}

int sf_tmpl_render_file(const char *path, const sf_tmpl_var_t *vars, size_t nvars, char **ret) {
        _cleanup_free_ char *tmpl = NULL;
        size_t len = 0;
        int r;

        r = sf_file_read(path, &tmpl, &len);
        if (r < 0) {
                log_err("template: cannot read %s: %s", path, strerror(-r));
                return r;
        }
        r = sf_tmpl_render(tmpl, vars, nvars, ret);
        if (r < 0)
                log_err("template: rendering %s failed", path);
        return r;
}

int sf_tmpl_dir_near(const char *bin_dir, char *out, size_t len) {
        char probe[PATH_MAX];
        if (snprintf(probe, sizeof(probe), "%s/../share/sf/templates/domain.xml", bin_dir) < (int)sizeof(probe) &&
            access(probe, R_OK) == 0) {
                if (snprintf(out, len, "%s/../share/sf/templates", bin_dir) >= (int)len)
                        return -ENAMETOOLONG;
                return 0;
        }
        if (snprintf(out, len, "%s/../templates", bin_dir) >= (int)len)
                return -ENAMETOOLONG;
        return 0;
}

int sf_tmpl_dir(char *out, size_t len) {
        const char *env = getenv("SF_TEMPLATES");
        char exe[PATH_MAX];
        ssize_t n;

        if (env && *env) {
                if (snprintf(out, len, "%s", env) >= (int)len)
                        return -ENAMETOOLONG;
                return 0;
        }
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n < 0)
                return -errno;
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (!slash)
                return -EINVAL;
        *slash = 0;
        return sf_tmpl_dir_near(exe, out, len);
}
