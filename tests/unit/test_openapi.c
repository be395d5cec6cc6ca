/* OpenAPI (api/openapi.c) against the route table (api/routes.c): every route served is
 * documented once, and everything documented is served; the document is well-formed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "api.h"
#include "openapi.h"

static size_t doc_matches(const sf_http_route_t *rt) {
        char path[256];
        size_t n = 0;

        for (size_t i = 0; i < sf_api_ndocs; i++) {
                sf_api_doc_route_path(sf_api_docs[i].path, path, sizeof(path));
                n += strcmp(sf_api_docs[i].method, rt->method) == 0 && strcmp(path, rt->pattern) == 0;
        }
        return n;
}

static void test_every_route_documented(void **state) {
        (void)state;
        for (size_t i = 0; i < sf_api_nroutes; i++) {
                if (doc_matches(&sf_api_routes[i]) != 1)
                        fail_msg("route %s %s is documented %zu times (want 1)", sf_api_routes[i].method,
                                 sf_api_routes[i].pattern, doc_matches(&sf_api_routes[i]));
        }
}

static void test_every_doc_served(void **state) {
        char path[256];

        (void)state;
        for (size_t i = 0; i < sf_api_ndocs; i++) {
                bool served = false;
                sf_api_doc_route_path(sf_api_docs[i].path, path, sizeof(path));
                for (size_t j = 0; j < sf_api_nroutes; j++)
                        served |= strcmp(sf_api_routes[j].method, sf_api_docs[i].method) == 0 &&
                                  strcmp(sf_api_routes[j].pattern, path) == 0;
                if (!served)
                        fail_msg("documented %s %s is not a route", sf_api_docs[i].method, sf_api_docs[i].path);
                assert_true(strcmp(sf_api_docs[i].auth, "none") == 0 || strcmp(sf_api_docs[i].auth, "token") == 0 ||
                            strcmp(sf_api_docs[i].auth, "system") == 0);
        }
}

static void test_document_shape(void **state) {
        json_object *doc = sf_api_openapi(), *paths, *item, *op, *params;

        (void)state;
        assert_string_equal(json_object_get_string(json_object_object_get(doc, "openapi")), "3.0.3");
        assert_true(json_object_object_get_ex(doc, "paths", &paths));
        assert_true(json_object_object_get_ex(paths, "/instances/{instance}/metadata/{key}", &item));
        assert_true(json_object_object_get_ex(item, "put", &op));
        assert_true(json_object_object_get_ex(op, "parameters", &params));
        assert_int_equal(json_object_array_length(params), 2);
        assert_string_equal(json_object_get_string(json_object_object_get(json_object_array_get_idx(params, 1), "name")),
                            "key");
        assert_true(json_object_object_get_ex(op, "security", NULL));
        assert_true(json_object_object_get_ex(paths, "/auth", &item));
        assert_true(json_object_object_get_ex(item, "post", &op));
        assert_false(json_object_object_get_ex(op, "security", NULL));
        json_object_put(doc);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_every_route_documented),
                cmocka_unit_test(test_every_doc_served),
                cmocka_unit_test(test_document_shape),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
