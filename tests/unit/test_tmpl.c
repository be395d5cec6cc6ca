/* Unit tests for lib/tmpl.c: escaping, raw fragments, errors, template dir lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tmpl.h"
#include "util.h"

static const sf_tmpl_var_t vars[] = {
        {"name", "a&b<c>\"d'e"},
        {"frag", "<disk type='file'/>"},
        {"empty", ""},
};

static void test_escape(void **state) {
        char *out = NULL;

        (void)state;
        assert_int_equal(sf_tmpl_render("<n>{{name}}</n>", vars, 3, &out), 0);
        assert_string_equal(out, "<n>a&amp;b&lt;c&gt;&quot;d&apos;e</n>");
        free(out);
        assert_int_equal(sf_tmpl_render("x{{ name }}y{{empty}}z", vars, 3, &out), 0);
        assert_string_equal(out, "xa&amp;b&lt;c&gt;&quot;d&apos;eyz");
        free(out);
        assert_int_equal(sf_tmpl_render("", vars, 3, &out), 0);
        assert_string_equal(out, "");
        free(out);
        assert_int_equal(sf_tmpl_render("no tags { } here", NULL, 0, &out), 0);
        assert_string_equal(out, "no tags { } here");
        free(out);
}

static void test_raw(void **state) {
        char *out = NULL;

        (void)state;
        assert_int_equal(sf_tmpl_render("<devices>{{{frag}}}</devices>", vars, 3, &out), 0);
        assert_string_equal(out, "<devices><disk type='file'/></devices>");
        free(out);
        assert_int_equal(sf_tmpl_render("{{frag}}", vars, 3, &out), 0);
        assert_string_equal(out, "&lt;disk type=&apos;file&apos;/&gt;");
        free(out);
}

static void test_errors(void **state) {
        char *out = (char *)0x1;

        (void)state;
        assert_int_equal(sf_tmpl_render("a {{nmae}} b", vars, 3, &out), -EINVAL);
        assert_ptr_equal(out, (char *)0x1); /* untouched on failure */
        assert_int_equal(sf_tmpl_render("a {{name b", vars, 3, &out), -EINVAL);
        assert_int_equal(sf_tmpl_render("a {{{frag}} b", vars, 3, &out), -EINVAL);
        assert_int_equal(sf_tmpl_render("a {{}} b", vars, 3, &out), -EINVAL);
        assert_int_equal(sf_tmpl_render("a {{na\nme}} b", vars, 3, &out), -EINVAL);
        assert_ptr_equal(out, (char *)0x1);
}

static void test_file_and_dir(void **state) {
        char dir[] = "/tmp/sftmplXXXXXX", path[512], tdir[PATH_MAX];
        char *out = NULL;

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/t.xml", dir);
        assert_int_equal(sf_file_write_atomic(path, "<x>{{name}}</x>\n", 16, 0644), 0);
        assert_int_equal(sf_tmpl_render_file(path, vars, 3, &out), 0);
        assert_string_equal(out, "<x>a&amp;b&lt;c&gt;&quot;d&apos;e</x>\n");
        free(out);
        snprintf(path, sizeof(path), "%s/missing.xml", dir);
        assert_int_equal(sf_tmpl_render_file(path, vars, 3, &out), -ENOENT);
        assert_int_equal(sf_rm_rf(dir), 0);

        setenv("SF_TEMPLATES", "/some/where", 1);
        assert_int_equal(sf_tmpl_dir(tdir, sizeof(tdir)), 0);
        assert_string_equal(tdir, "/some/where");
        unsetenv("SF_TEMPLATES");
        assert_int_equal(sf_tmpl_dir(tdir, sizeof(tdir)), 0);
        /* <dir of this binary>/../templates */
        char exe[PATH_MAX], want[PATH_MAX + 16];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        assert_true(n > 0);
        exe[n] = 0;
        *strrchr(exe, '/') = 0;
        snprintf(want, sizeof(want), "%s/../templates", exe);
        assert_string_equal(tdir, want);
}

/* An installed tree (make install): PREFIX/sbin/sf-compute finds PREFIX/share/sf/templates. */
static void test_dir_installed(void **state) {
        char root[] = "/tmp/sftmplinstXXXXXX", path[512], bin[512], tdir[PATH_MAX], want[PATH_MAX];

        (void)state;
        assert_non_null(mkdtemp(root));
        snprintf(bin, sizeof(bin), "%s/sbin", root);
        assert_int_equal(sf_mkdir_p(bin, 0755), 0);
        /* no share/sf/templates: the source tree's layout */
        assert_int_equal(sf_tmpl_dir_near(bin, tdir, sizeof(tdir)), 0);
        snprintf(want, sizeof(want), "%s/../templates", bin);
        assert_string_equal(tdir, want);
        snprintf(path, sizeof(path), "%s/share/sf/templates", root);
        assert_int_equal(sf_mkdir_p(path, 0755), 0);
        /* a directory without domain.xml is not a template directory */
        assert_int_equal(sf_tmpl_dir_near(bin, tdir, sizeof(tdir)), 0);
        assert_string_equal(tdir, want);
        snprintf(path, sizeof(path), "%s/share/sf/templates/domain.xml", root);
        assert_int_equal(sf_file_write_atomic(path, "<domain/>\n", 10, 0644), 0);
        assert_int_equal(sf_tmpl_dir_near(bin, tdir, sizeof(tdir)), 0);
        snprintf(want, sizeof(want), "%s/../share/sf/templates", bin);
        assert_string_equal(tdir, want);
        assert_int_equal(sf_tmpl_dir_near(bin, tdir, 8), -ENAMETOOLONG);
        assert_int_equal(sf_rm_rf(root), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_escape),
                cmocka_unit_test(test_raw),
                cmocka_unit_test(test_dir_installed),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_file_and_dir),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
