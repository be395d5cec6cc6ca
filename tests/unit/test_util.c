/* Unit tests for lib/util.c: uuids, names, atomic files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

static void test_uuid(void **state) {
        char a[SF_UUID_LEN], b[SF_UUID_LEN], c[SF_UUID_LEN];

        (void)state;
        sf_uuid_new(a);
        sf_uuid_new(b);
        assert_int_equal(strlen(a), 36);
        assert_string_not_equal(a, b);
        assert_true(sf_uuid_parse(a, NULL));
        assert_true(sf_uuid_parse("0F6A5B7E-2C3D-4E5F-8A9B-0C1D2E3F4A5B", c));
        assert_string_equal(c, "0f6a5b7e-2c3d-4e5f-8a9b-0c1d2e3f4a5b");
        assert_false(sf_uuid_parse("mynet", NULL));
        assert_false(sf_uuid_parse("0f6a5b7e-2c3d-4e5f-8a9b-0c1d2e3f4a5bxx", NULL));
}

static void test_names(void **state) {
        (void)state;
        assert_true(sf_name_valid("web-1"));
        assert_false(sf_name_valid(""));
        assert_false(sf_name_valid("a.b"));
        assert_false(sf_name_valid("a b"));
        assert_false(sf_name_valid("../etc"));
        assert_false(sf_name_valid("a123456789012345678901234567890123456789012345678901234567890123"));
}

static void test_atomic_file(void **state) {
        char dir[] = "/tmp/sfutilXXXXXX", path[512], sub[256];
        char *data = NULL;
        size_t len = 0;
        struct stat st;

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(sub, sizeof(sub), "%s/a/b/c", dir);
        assert_int_equal(sf_mkdir_p(sub, 0755), 0);
        snprintf(path, sizeof(path), "%s/f", sub);
        assert_int_equal(sf_file_write_atomic(path, "hello", 5, 0600), 0);
        assert_int_equal(sf_file_read(path, &data, &len), 0);
        assert_int_equal(len, 5);
        assert_string_equal(data, "hello");
        free(data);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(sf_rm_rf(dir), 0);
        assert_int_equal(stat(dir, &st), -1);
        assert_int_equal(sf_file_read(path, &data, &len), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_uuid),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_atomic_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
