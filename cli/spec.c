/* sf_spec_*: see spec.h. The split rules are Python's: "a,b".split(',') always yields at
 * least one element (so "" is one empty element), and "k=v".split('=') must give exactly
 * two parts, either of which may be empty. */
#include "spec.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int spec_error(char *err, size_t errlen, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        return r;
}

/* Python's str.isspace() for ASCII: what int() strips. */
static int py_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int sf_spec_pyint(const char *s, int64_t *ret) {
        const char *p = s, *end = s + strlen(s);
        uint64_t v = 0, limit;
        int neg = 0, digits = 0;

        while (p < end && py_space(*p))
                p++;
        while (end > p && py_space(end[-1]))
                end--;
        if (p < end && (*p == '+' || *p == '-'))
                neg = *p++ == '-';
        limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        for (; p < end; p++) {
                if (*p == '_') {
                        /* only between two digits */
                        if (!digits || p + 1 >= end || p[1] < '0' || p[1] > '9')
                                return -EINVAL;
                        continue;
                }
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                digits++;
                if (v > (limit - (uint64_t)(*p - '0')) / 10) {
                        /* keep checking the syntax: "9...9x" is not an integer at all */
                        for (p++; p < end; p++)
                                if ((*p < '0' || *p > '9') && *p != '_')
                                        return -EINVAL;
                        return -ERANGE;
                }
                v = v * 10 + (uint64_t)(*p - '0');
        }
        if (!digits)
                return -EINVAL;
        *ret = neg ? (int64_t)(0 - v) : (int64_t)v;
        return 0;
}

/* SPEC or SPEC@ADDR: upstream's _parse_spec, then a two-way unpack. */
static int at_split(const char *spec, char **ret_a, char **ret_b) {
        const char *at = strchr(spec, '@');
        char *a, *b = NULL;

        if (at && strchr(at + 1, '@'))
                return -EINVAL;
        a = at ? strndup(spec, (size_t)(at - spec)) : strdup(spec);
        if (!a || (at && !(b = strdup(at + 1)))) {
                free(a);
                return -ENOMEM;
        }
        *ret_a = a;
        *ret_b = b;
        return 0;
}

/* k=v,k=v into a new object of strings; `what` names the spec in upstream's message. */
static int kv_parse(const char *spec, const char *what, json_object **ret, char *err, size_t errlen) {
        json_object *o = json_object_new_object();
        const char *elem = spec;

        if (!o)
                return -ENOMEM;
        for (;;) {
                size_t len = strcspn(elem, ",");
                const char *eq = memchr(elem, '=', len);
                if (!eq || memchr(eq + 1, '=', len - (size_t)(eq + 1 - elem))) {
                        json_object_put(o);
                        return spec_error(err, errlen, -EINVAL, "Error in %s specification -%s should be key=value: %.*s",
                                          what, strcmp(what, "video") ? "" : " ", (int)len, elem);
                }
                char *key = strndup(elem, (size_t)(eq - elem));
                json_object *val = json_object_new_string_len(eq + 1, (int)(len - (size_t)(eq + 1 - elem)));
                if (!key || !val || json_object_object_add(o, key, val) < 0) {
                        free(key);
                        json_object_put(val);
                        json_object_put(o);
                        return -ENOMEM;
                }
                free(key);
                if (!elem[len])
                        break;
                elem += len + 1;
        }
        *ret = o;
        return 0;
}

/* o[key] (a string) into an int, when set and not empty. */
static int kv_int(json_object *o, const char *key, const char *msg, char *err, size_t errlen) {
        json_object *v;
        int64_t n;
        int r;

        if (!json_object_object_get_ex(o, key, &v) || !*json_object_get_string(v))
                return 0;
        r = sf_spec_pyint(json_object_get_string(v), &n);
        if (r < 0)
                return spec_error(err, errlen, r, "%s", r == -ERANGE ? "Disk size is out of range" : msg);
        return json_object_object_add(o, key, json_object_new_int64(n)) < 0 ? -ENOMEM : 0;
}

int sf_spec_disk(const char *spec, json_object **ret, char *err, size_t errlen) {
        char *size = NULL, *base = NULL;
        json_object *d;
        int64_t n;
        int r;

        r = at_split(spec, &size, &base);
        if (r == -EINVAL)
                return spec_error(err, errlen, r, "Error in disk specification - should be SIZE[@BASE]: %s", spec);
        if (r < 0)
                return r;
        r = sf_spec_pyint(size, &n);
        if (r < 0) {
                spec_error(err, errlen, r, "%s", r == -ERANGE ? "Disk size is out of range" : "Disk size is not an integer");
                goto cleanup;
        }
        d = json_object_new_object();
        json_object_object_add(d, "size", json_object_new_int64(n));
        json_object_object_add(d, "base", base ? json_object_new_string(base) : NULL);
        json_object_object_add(d, "bus", NULL);
        json_object_object_add(d, "type", json_object_new_string("disk"));
        *ret = d;
cleanup:
        free(size);
        free(base);
        return r;
}

int sf_spec_diskspec(const char *spec, json_object **ret, char *err, size_t errlen) {
        json_object *d = NULL;
        int r = kv_parse(spec, "disk", &d, err, errlen);

        if (r == 0)
                r = kv_int(d, "size", "Disk size is not an integer", err, errlen);
        if (r < 0) {
                json_object_put(d);
                return r;
        }
        *ret = d;
        return 0;
}

int sf_spec_network(const char *spec, int floated, json_object **ret, char *err, size_t errlen) {
        char *net = NULL, *addr = NULL;
        json_object *n;
        int r = at_split(spec, &net, &addr);

        if (r == -EINVAL)
                return spec_error(err, errlen, r, "Error in network specification - should be NETWORK[@ADDRESS]: %s",
                                  spec);
        if (r < 0)
                return r;
        n = json_object_new_object();
        json_object_object_add(n, "network_uuid", json_object_new_string(net));
        json_object_object_add(n, "macaddress", NULL);
        json_object_object_add(n, "model", json_object_new_string("virtio"));
        if (floated)
                json_object_object_add(n, "float", json_object_new_boolean(1));
        if (addr && *addr)
                json_object_object_add(n, "address", json_object_new_string(addr));
        free(net);
        free(addr);
        *ret = n;
        return 0;
}

int sf_spec_networkspec(const char *spec, json_object **ret, char *err, size_t errlen) {
        json_object *n = NULL, *f;
        int r = kv_parse(spec, "network", &n, err, errlen);

        if (r < 0)
                return r;
        if (json_object_object_get_ex(n, "float", &f)) {
                const char *s = json_object_get_string(f);
                json_object_object_add(n, "float", json_object_new_boolean(!strcmp(s, "true") || !strcmp(s, "True")));
        }
        *ret = n;
        return 0;
}

int sf_spec_video(const char *spec, json_object **ret, char *err, size_t errlen) {
        json_object *v = json_object_new_object(), *given = NULL, *mem;
        int64_t n;
        int r;

        json_object_object_add(v, "model", json_object_new_string("cirrus"));
        json_object_object_add(v, "memory", json_object_new_int(16384));
        if (spec) {
                r = kv_parse(spec, "video", &given, err, errlen);
                if (r < 0) {
                        json_object_put(v);
                        return r;
                }
                json_object_object_foreach(given, k, val) json_object_object_add(v, k, json_object_get(val));
                json_object_put(given);
                if (json_object_object_get_ex(v, "memory", &mem) && json_object_is_type(mem, json_type_string) &&
                    sf_spec_pyint(json_object_get_string(mem), &n) == 0)
                        json_object_object_add(v, "memory", json_object_new_int64(n));
        }
        *ret = v;
        return 0;
}

/* json-c's strict mode still takes 'single-quoted' keys; json.loads does not. */
static int quote_outside_string(const char *s) {
        int in = 0;
        for (; *s; s++) {
                if (in && *s == '\\' && s[1])
                        s++;
                else if (*s == '"')
                        in = !in;
                else if (!in && *s == '\'')
                        return 1;
        }
        return 0;
}

int sf_spec_json_parse(const char *s, json_object **ret) {
        struct json_tokener *tok;
        json_object *o;
        size_t end;

        if (quote_outside_string(s))
                return -EINVAL;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        /* the terminating NUL ends a bare number ("5" is complete only then) */
        o = json_tokener_parse_ex(tok, s, (int)strlen(s) + 1);
        end = json_tokener_get_parse_end(tok);
        if (json_tokener_get_error(tok) != json_tokener_success) {
                json_tokener_free(tok);
                return -EINVAL;
        }
        json_tokener_free(tok);
        while (end < strlen(s) && py_space(s[end]))
                end++;
        if (end < strlen(s)) {
                json_object_put(o);
                return -EINVAL;
        }
        *ret = o; /* NULL for JSON null */
        return 0;
}

int sf_spec_metadata_add(json_object *md, const char *kv, char *err, size_t errlen) {
        const char *eq = strchr(kv, '=');
        json_object *val = NULL;
        char *key;

        if (!eq)
                return spec_error(err, errlen, -EINVAL, "Unable to parse metadata, correct format is \"key=value\"");
        key = strndup(kv, (size_t)(eq - kv));
        if (!key)
                return -ENOMEM;
        if (!strcmp(key, "tags") || !strcmp(key, "affinity")) {
                if (sf_spec_json_parse(eq + 1, &val) < 0) {
                        free(key);
                        return spec_error(err, errlen, -EINVAL,
                                          "Reserved metadata keys (tags, affinity) must contain valid JSON: %s", eq + 1);
                }
        } else {
                val = json_object_new_string(eq + 1);
        }
        json_object_object_add(md, key, val);
        free(key);
        return 0;
}
