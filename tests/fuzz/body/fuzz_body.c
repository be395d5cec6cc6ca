/* Request bodies as sf-api sees them (api/http.c): the raw-body checks and JSON parse of
 * sf_http_body_parse, then what handlers do with the result: the keyword check
 * (sf_http_check_keys), the typed getters, and the JSON answer (sf_http_json). */
#include "../fuzz.h"

#include <errno.h>
#include <json-c/json.h>

#include "http.h"

static const char *const create_keys[] = {
        "name", "cpus", "memory", "disk", "network", "ssh_key", "user_data", "placed_on",
        "namespace", "video", "uefi", "secure_boot", "nvram_template", "configdrive",
        "metadata", "side_channels", NULL};
static const char *const list_keys[] = {"all", NULL};

static void check_text(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];

                FUZZ_CHECK(c >= 0x20 ? c != 0x7f : c == '\t' || c == '\n' || c == '\r');
        }
}

static size_t key_count(json_object *o) {
        size_t n = 0;

        json_object_object_foreach(o, k, v) {
                (void)k, (void)v;
                n++;
        }
        return n;
}

/* What the control-character check promises handlers: every string, key or value, at
 * any depth, is a whole C string (no NUL) without other control characters but TAB, LF
 * and CR. */
static void check_strings(json_object *o) {
        switch (json_object_get_type(o)) {
        case json_type_object: {
                json_object_object_foreach(o, k, v) {
                        check_text(k, strlen(k));
                        check_strings(v);
                }
                break;
        }
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        check_strings(json_object_array_get_idx(o, i));
                break;
        case json_type_string: {
                const char *s = json_object_get_string(o);
                size_t n = (size_t)json_object_get_string_len(o);

                FUZZ_CHECK(strlen(s) == n);
                check_text(s, n);
                break;
        }
        default:
                break;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* MHD hands the body over in a NUL-terminated buffer; no body is a NULL one. */
        char *buf = size ? fuzz_str(data, size) : NULL;
        sf_http_req_t req = {.method = "POST", .path = "/instances", .handler_name = "post"};
        sf_http_resp_t resp = {0};
        json_object *body = NULL, *back;
        int r;

        r = sf_http_body_parse(buf, size, true, &body);
        FUZZ_CHECK(r == 0 && json_object_is_type(body, json_type_object) && key_count(body) == 0);
        json_object_put(body);
        body = NULL;

        r = sf_http_body_parse(buf, size, false, &body);
        FUZZ_CHECK(r == 0 || r == -EBADMSG);
        if (r < 0)
                goto cleanup;
        FUZZ_CHECK(json_object_is_type(body, json_type_object));
        check_strings(body);
        req.body = body;
        req.raw_body = buf ? buf : "";
        req.raw_len = size;

        /* A key outside the list is a 400 naming it; otherwise nothing is filled in. */
        r = sf_http_check_keys(&req, &resp, create_keys);
        FUZZ_CHECK(r == 0 ? resp.status == 0 : r == -EINVAL && resp.status == 400 && resp.body);
        r = sf_http_check_keys(&req, &resp, list_keys);
        FUZZ_CHECK(r == 0 || (r == -EINVAL && resp.status == 400));
        r = sf_http_check_keys(&req, &resp, NULL);
        FUZZ_CHECK(key_count(body) == 0 ? r == 0 : r == -EINVAL);

        json_object_object_foreach(body, key, val) {
                const char *s = NULL;
                bool b;
                int64_t i;

                r = sf_http_body_str(&req, key, &s);
                FUZZ_CHECK(r == 0 ? s != NULL && json_object_is_type(val, json_type_string)
                                  : r == -ENOENT || r == -EINVAL);
                r = sf_http_body_bool(&req, key, false, &b);
                FUZZ_CHECK(r == 0 || r == -EINVAL);
                r = sf_http_body_int(&req, key, 0, &i);
                FUZZ_CHECK(r == 0 || r == -EINVAL);
        }

        /* Echoing the body back (as metadata GETs do) gives JSON that parses again to an
         * object with the same keys. */
        r = sf_http_json(&resp, 200, json_object_get(body));
        FUZZ_CHECK(r == 0 && resp.body && resp.len == strlen(resp.body) && resp.body[resp.len - 1] == '\n');
        back = json_tokener_parse(resp.body);
        FUZZ_CHECK(json_object_is_type(back, json_type_object) && key_count(back) == key_count(body));
        json_object_put(back);
cleanup:
        free(resp.body);
        json_object_put(body);
        free(buf);
        return 0;
}
