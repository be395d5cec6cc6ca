/* The disk list of POST /instances (api/instances.c sf_api_disks_check): the input is the
 * value of "disk", parsed as the server parses a body, then checked against the download
 * policy of a node with the default configuration plus a small allow list. */
#include "../fuzz.h"

#include <errno.h>
#include <json-c/json.h>

#include "api.h"
#include "sflimits.h"

static sf_config_t cfg = {
        .redis_host = "127.0.0.1",
        .redis_port = 6379,
        .nats_url = "nats://127.0.0.1:4222",
        .api_port = 13000,
        .floating_network = "192.168.20.0/24",
        .download_allow = "127.0.0.1:13080,[::1]:8080,10.1.0.0/16",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char pre[] = "{\"disk\": ", post[] = "}";
        size_t len = sizeof(pre) - 1 + size + sizeof(post) - 1;
        char *text = malloc(len + 1);
        sf_http_resp_t resp = {0};
        json_object *body = NULL;
        size_t ndisks = 0;
        int r;

        if (!text)
                abort();
        memcpy(text, pre, sizeof(pre) - 1);
        memcpy(text + sizeof(pre) - 1, data, size);
        memcpy(text + sizeof(pre) - 1 + size, post, sizeof(post));
        if (sf_http_body_parse(text, len, false, &body) < 0)
                goto cleanup;
        r = sf_api_disks_check(body, &cfg, &resp, &ndisks);
        if (r == 0) {
                json_object *d = NULL;

                FUZZ_CHECK(resp.status == 0);
                FUZZ_CHECK(json_object_object_get_ex(body, "disk", &d));
                FUZZ_CHECK(ndisks >= 1 && ndisks <= SF_MAX_DISKS && ndisks == json_object_array_length(d));
        } else {
                /* Bad input is a 400 with upstream's envelope, never anything else. */
                FUZZ_CHECK(r == -EINVAL && resp.status == 400 && resp.body &&
                           strncmp(resp.body, "{\"error\": ", 10) == 0);
        }
cleanup:
        free(resp.body);
        json_object_put(body);
        free(text);
        return 0;
}
