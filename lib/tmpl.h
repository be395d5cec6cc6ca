/* A tiny mustache-like renderer for the libvirt XML templates.
 * {{name}} inserts the value XML-escaped, {{{name}}} inserts it raw (for fragments
 * that were themselves rendered from templates).  An unknown name is an error so a
 * typo never renders as an empty string. */
#pragma once
#include <stddef.h>

typedef struct {
        const char *name;
        const char *value;
} sf_tmpl_var_t;

/* Render tmpl into a fresh malloc'd string.  -EINVAL on an unknown variable or a
 * malformed/unterminated tag (logged), -ENOMEM on OOM. */
int sf_tmpl_render(const char *tmpl, const sf_tmpl_var_t *vars, size_t nvars, char **ret);
/* As sf_tmpl_render, template read from path. */
int sf_tmpl_render_file(const char *path, const sf_tmpl_var_t *vars, size_t nvars, char **ret);
/* Template directory: $SF_TEMPLATES, else sf_tmpl_dir_near(<dir of /proc/self/exe>).
 * -ENAMETOOLONG if it does not fit in len. */
int sf_tmpl_dir(char *out, size_t len);
/* The templates next to binaries in bin_dir: <bin_dir>/../share/sf/templates when it holds
 * domain.xml (an installed tree, `make install`: sbin/ beside share/sf/), else
 * <bin_dir>/../templates (the source tree: build/ beside templates/). */
int sf_tmpl_dir_near(const char *bin_dir, char *out, size_t len);
