/* Unit tests for lib/json.c: byte-exact Python json.dumps() output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "json.h"

static void check_double(double d, const char *want) {
        json_object *o = json_object_new_double(d);
        char *s = sf_json_dumps(o);

        assert_non_null(s);
        assert_string_equal(s, want);
        free(s);
        json_object_put(o);
}

static void test_doubles(void **state) {
        (void)state;
        /* Expected strings are what CPython 3 prints for json.dumps(v). */
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
}

static void test_structure(void **state) {
        json_object *o = json_object_new_object(), *arr = json_object_new_array();
        char *s;

        (void)state;
        /* Insertion order, not sorted: "z" first. */
        json_object_object_add(o, "z", json_object_new_string("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f\x01\"\\\n/"));
        json_object_array_add(arr, json_object_new_int(1));
        json_object_array_add(arr, json_object_new_int64(-2));
        json_object_array_add(arr, json_object_new_object());
        json_object_object_add(o, "b", arr);
        json_object_object_add(o, "c", NULL);
        json_object_object_add(o, "d", json_object_new_boolean(1));
        json_object_object_add(o, "e", json_object_new_array());
        json_object_object_add(o, "big", json_object_new_uint64(18446744073709551615ULL));
        json_object_object_add(o, "min", json_object_new_int64(INT64_MIN));
        s = sf_json_dumps(o);
        assert_non_null(s);
        assert_string_equal(s, "{\"z\": \"\\u00e9\\u20ac\\ud83d\\ude00\\u007f\\u0001\\\"\\\\\\n/\", "
                               "\"b\": [1, -2, {}], \"c\": null, \"d\": true, \"e\": [], "
                               "\"big\": 18446744073709551615, \"min\": -9223372036854775808}");
        free(s);
        json_object_put(o);

        s = sf_json_dumps(NULL);
        assert_string_equal(s, "null");
        free(s);
}

static void test_strings(void **state) {
        json_object *o;
        char *s;

        (void)state;
        /* Embedded NUL, invalid UTF-8 (-> U+FFFD), escapes in keys. */
        o = json_object_new_string_len("a\0b\xff", 4);
        s = sf_json_dumps(o);
        assert_string_equal(s, "\"a\\u0000b\\ufffd\"");
        free(s);
        json_object_put(o);

        o = json_object_new_object();
        json_object_object_add(o, "k\"\t", json_object_new_string(""));
        s = sf_json_dumps(o);
        assert_string_equal(s, "{\"k\\\"\\t\": \"\"}");
        free(s);
        json_object_put(o);

        /* A parsed document round-trips through Python formatting. */
        o = json_tokener_parse("{\"error\":\"x\",\"status\":400,\"t\":1.50}");
        s = sf_json_dumps(o);
        assert_string_equal(s, "{\"error\": \"x\", \"status\": 400, \"t\": 1.5}");
        free(s);
        json_object_put(o);
}

static bool has_control(const char *text) { return sf_json_text_has_control(text, strlen(text)); }

static void test_control_chars(void **state) {
        static const char raw_nul[] = "{\"a\": \"x\0y\"}";

        (void)state;
        /* Escaped NUL in a value, in a key, deep inside; escaped and raw controls. */
        assert_true(has_control("{\"name\": \"vm\\u0000x\"}"));
        assert_true(has_control("{\"a\\u0000b\": 1}"));
        assert_true(has_control("{\"d\": [{\"x\": [\"ok\", \"\\u001B\"]}]}"));
        assert_true(has_control("{\"a\": \"\\b\"}"));
        assert_true(has_control("{\"a\": \"\\f\"}"));
        assert_true(has_control("{\"a\": \"\\u007f\"}"));
        assert_true(has_control("{\"a\": \"x\001\"}"));
        assert_true(sf_json_text_has_control(raw_nul, sizeof(raw_nul) - 1));
        /* Allowed: TAB/LF/CR, an escaped backslash before "u0000", controls outside strings. */
        assert_false(has_control("{\"k\": \"ssh-ed25519 AAAA x@y\\n\", \"t\": \"a\\tb\\r\"}"));
        assert_false(has_control("{\"k\": \"c:\\\\u0000\"}"));
        assert_false(has_control("{\"k\":\n\t\"v\\u00e9\\\"\"}"));
        assert_false(has_control(""));
}

static bool is_utf8(const char *text) { return sf_json_text_is_utf8(text, strlen(text)); }

static void test_utf8(void **state) {
        (void)state;
        assert_true(is_utf8(""));
        assert_true(is_utf8("{\"caf\xc3\xa9\": \"\xe2\x82\xac \xf0\x9f\x98\x80\"}"));
        assert_false(is_utf8("\xff"));
        assert_false(is_utf8("a\xc3"));             /* truncated */
        assert_false(is_utf8("\xc0\xaf"));          /* overlong "/" */
        assert_false(is_utf8("\xed\xa0\x80"));      /* a surrogate */
        assert_false(is_utf8("\xf4\x90\x80\x80"));  /* beyond U+10FFFF */
}

static bool single_quote(const char *text) { return sf_json_text_has_single_quote(text, strlen(text)); }

static void test_single_quote(void **state) {
        (void)state;
        assert_true(single_quote("{'a': 1}"));
        assert_true(single_quote("{\"a\": 1, 'b': 2}"));
        assert_true(single_quote("{\"a\\\\\": 'x'}"));     /* the string ends after the \\ */
        assert_false(single_quote("{\"it's\": \"don't\"}"));
        assert_false(single_quote("{\"a\\\"'\": 1}"));      /* \" does not end the string */
        assert_false(single_quote(""));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_doubles),
                cmocka_unit_test(test_structure),
                cmocka_unit_test(test_strings),
                cmocka_unit_test(test_control_chars),
                cmocka_unit_test(test_utf8),
                cmocka_unit_test(test_single_quote),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
