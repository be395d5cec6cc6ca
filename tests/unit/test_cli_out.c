/* Unit tests for cli/out.c (the sf CLI's output): json.dumps(indent=4, sort_keys=True)
 * byte for byte, Python str() of values, and prettytable's layout and centring rule.
 * out.c is compiled in here: the CLI is not part of the module libraries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cli/out.c"

static char *dump(json_object *o) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        assert_non_null(f);
        sf_out_json(f, o);
        fclose(f);
        return buf;
}

static void check_double(double d, const char *want) {
        char buf[64], w[80];
        json_object *o = json_object_new_double(d);
        char *s = dump(o);

        py_float(buf, sizeof(buf), d);
        assert_string_equal(buf, want);
        snprintf(w, sizeof(w), "%s\n", want);
        assert_string_equal(s, w);
        free(s);
        json_object_put(o);
}

static void test_doubles(void **state) {
        (void)state;
        /* What CPython 3 prints for repr(v) (as in test_json.c). */
        check_double(1.0, "1.0");
        check_double(0.1, "0.1");
        check_double(1e16, "1e+16");
        check_double(1e15, "1000000000000000.0");
        check_double(123456789012345.6, "123456789012345.6");
        check_double(1732500000.123456, "1732500000.123456");
        check_double(1e-5, "1e-05");
        check_double(0.0001, "0.0001");
        check_double(-0.0, "-0.0");
        check_double(1e100, "1e+100");
        check_double(2.5e-10, "2.5e-10");
        check_double(100.0, "100.0");
        check_double(-3.25, "-3.25");
        check_double(5e-324, "5e-324");
        check_double(1.7976931348623157e308, "1.7976931348623157e+308");
        check_double(12345678901234567.0, "1.2345678901234568e+16");
        check_double(0.30000000000000004, "0.30000000000000004");
        check_double(25000000000.0, "25000000000.0");
}

static void test_indent_sorted(void **state) {
        json_object *o = json_tokener_parse(
                "{\"b\": [1, true, null, {}], \"a\": {\"z\": \"x\\\"y\\n\", \"c\": []}, \"u\": \"\xc3\xa9\xf0\x9f\x98\x80\"}");
        char *s;
        (void)state;
        assert_non_null(o);
        s = dump(o);
        /* python3 -c 'import json; print(json.dumps(d, indent=4, sort_keys=True))' */
        assert_string_equal(s, "{\n"
                               "    \"a\": {\n"
                               "        \"c\": [],\n"
                               "        \"z\": \"x\\\"y\\n\"\n"
                               "    },\n"
                               "    \"b\": [\n"
                               "        1,\n"
                               "        true,\n"
                               "        null,\n"
                               "        {}\n"
                               "    ],\n"
                               "    \"u\": \"\\u00e9\\ud83d\\ude00\"\n"
                               "}\n");
        free(s);
        json_object_put(o);
}

static void test_pystr(void **state) {
        json_object *o = json_tokener_parse("{\"a\": [true, null, 1.5, \"it's\"], \"b\": false}");
        char *s;
        (void)state;
        s = sf_out_pystr(o);
        assert_string_equal(s, "{'a': [True, None, 1.5, \"it's\"], 'b': False}");
        free(s);
        s = sf_out_pystr(json_object_object_get(o, "b"));
        assert_string_equal(s, "False");
        free(s);
        s = sf_out_pystr(NULL);
        assert_string_equal(s, "None");
        free(s);
        json_object_put(o);
}

static void test_table(void **state) {
        static const char *const hdr[] = {"name", "ab", "interfaces"};
        const char *r1[] = {"system", "x", "0: 10.0.0.1\n1: 10.0.0.2"};
        const char *r2[] = {"abc", "xyz", ""};
        sf_table_t *t = sf_table_new(3, hdr);
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        (void)state;
        sf_table_left(t, 2);
        sf_table_add(t, r1);
        sf_table_add(t, r2);
        sf_table_print(f, t);
        fclose(f);
        /* prettytable 3.6: centred (odd slack: extra space right of odd-length text, left of
         * even), one column left-aligned, multi-line cells top-aligned. */
        assert_string_equal(buf, "+--------+-----+-------------+\n"
                                 "|  name  |  ab | interfaces  |\n"
                                 "+--------+-----+-------------+\n"
                                 "| system |  x  | 0: 10.0.0.1 |\n"
                                 "|        |     | 1: 10.0.0.2 |\n"
                                 "|  abc   | xyz |             |\n"
                                 "+--------+-----+-------------+\n");
        free(buf);
        sf_table_free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_doubles),
                cmocka_unit_test(test_indent_sorted),
                cmocka_unit_test(test_pystr),
                cmocka_unit_test(test_table),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
