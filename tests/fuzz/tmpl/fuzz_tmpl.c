/* Template rendering (lib/tmpl.c) with the real templates/ ($SF_TEMPLATES, else ./templates).
 * First byte: which template (low bits) and the mode (high bit).
 * Values mode: the rest is the values of the template's {{escaped}} variables, NUL
 *   separated; {{{raw}}} ones stay empty, as fragments rendered from templates. Rendering
 *   must succeed, and no value may add a markup character (< > " ') to the XML.
 * Text mode: the rest is a template text, rendered with every variable the real templates
 *   name (it must fail cleanly or succeed, never crash). */
#include "../fuzz.h"

#include <errno.h>
#include <stdbool.h>

#include "tmpl.h"
#include "util.h"

#define MAX_VARS 64

typedef struct tmpl {
        const char *file;
        char *text;
        sf_tmpl_var_t vars[MAX_VARS];
        bool raw[MAX_VARS];
        size_t nvars;
        size_t markup[4]; /* counts of < > " ' when every variable is empty */
} tmpl_t;

static tmpl_t tmpls[] = {{.file = "domain.xml"}, {.file = "domain-disk.xml"},
                         {.file = "domain-nic.xml"}, {.file = "domain-backing.xml"}};
static sf_tmpl_var_t all_vars[4 * MAX_VARS];
static size_t nall;

static void count_markup(const char *s, size_t out[4]) {
        static const char m[] = "<>\"'";

        memset(out, 0, 4 * sizeof(out[0]));
        for (; *s; s++)
                for (int i = 0; i < 4; i++)
                        out[i] += *s == m[i];
}

/* The variable names a template uses, in order of first use. */
static void scan_vars(tmpl_t *t) {
        for (const char *p = t->text; (p = strstr(p, "{{"));) {
                bool raw = p[2] == '{';
                const char *name = p + (raw ? 3 : 2), *end = strstr(name, raw ? "}}}" : "}}");
                char *n;
                bool seen = false;

                if (!end)
                        break;
                n = strndup(name, (size_t)(end - name));
                if (!n || t->nvars == MAX_VARS)
                        abort();
                for (size_t i = 0; i < t->nvars; i++)
                        seen |= strcmp(t->vars[i].name, n) == 0;
                if (seen) {
                        free(n);
                } else {
                        t->raw[t->nvars] = raw;
                        t->vars[t->nvars++] = (sf_tmpl_var_t){.name = n, .value = ""};
                        all_vars[nall++] = (sf_tmpl_var_t){.name = n, .value = "v&<'\"x"};
                }
                p = end;
        }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        const char *dir = getenv("SF_TEMPLATES");

        (void)argc, (void)argv;
        for (size_t i = 0; i < SF_ARRAY_SIZE(tmpls); i++) {
                char path[4096], *out = NULL;
                size_t len;

                snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "templates", tmpls[i].file);
                if (sf_file_read(path, &tmpls[i].text, &len) < 0) {
                        fprintf(stderr, "fuzz_tmpl: cannot read %s (set SF_TEMPLATES)\n", path);
                        abort();
                }
                scan_vars(&tmpls[i]);
                if (sf_tmpl_render(tmpls[i].text, tmpls[i].vars, tmpls[i].nvars, &out) < 0)
                        abort();
                count_markup(out, tmpls[i].markup);
                free(out);
        }
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        tmpl_t *t;
        sf_tmpl_var_t vars[MAX_VARS];
        char *out = NULL, *vals[MAX_VARS] = {0};
        size_t pos = 1, counts[4];
        int r;

        if (size == 0)
                return 0;
        t = &tmpls[data[0] % SF_ARRAY_SIZE(tmpls)];
        if (data[0] & 0x80) {
                char *text = fuzz_str(data + 1, size - 1);

                r = sf_tmpl_render(text, all_vars, nall, &out);
                FUZZ_CHECK(r == 0 ? out != NULL : r == -EINVAL);
                free(out);
                free(text);
                return 0;
        }
        for (size_t i = 0; i < t->nvars; i++) {
                vars[i] = t->vars[i];
                if (!t->raw[i] && (vals[i] = fuzz_part(data, size, &pos, '\0')))
                        vars[i].value = vals[i];
        }
        r = sf_tmpl_render(t->text, vars, t->nvars, &out);
        FUZZ_CHECK(r == 0 && out);
        count_markup(out, counts);
        FUZZ_CHECK(memcmp(counts, t->markup, sizeof(counts)) == 0);
        free(out);
        for (size_t i = 0; i < t->nvars; i++)
                free(vals[i]);
        return 0;
}
