/* The NIC list of POST /instances (api/instances.c): the input is the value of "network",
 * optionally followed by a NUL and the JSON of the network doc every entry resolves to (a
 * created 10.0.0.0/24 network in namespace "system" when absent). Each entry gets the
 * shape check create_resolve_networks makes before its lookup, then sf_api_nic_check. */
#include "../fuzz.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>

#include "api.h"
#include "ipam.h"

static const char default_net[] =
        "{\"uuid\": \"2b4a3c4e-0000-4000-8000-000000000001\", \"name\": \"mynet\", "
        "\"namespace\": \"system\", \"netblock\": \"10.0.0.0/24\", \"state\": \"created\"}";

static void check_nic(const sf_api_nic_t *n, json_object *net) {
        sf_cidr_t cidr;
        uint32_t ip;

        FUZZ_CHECK(n->model[0]);
        FUZZ_CHECK(n->mac[0] == 0 || strlen(n->mac) == 17);
        for (size_t i = 0; n->mac[i]; i++)
                FUZZ_CHECK(i % 3 == 2 ? n->mac[i] == ':' : isxdigit((unsigned char)n->mac[i]) &&
                                                            !isupper((unsigned char)n->mac[i]));
        /* A requested address is inside the network's block. */
        if (n->address[0] && strcmp(n->address, "none") != 0) {
                FUZZ_CHECK(sf_ip_parse(n->address, &ip) == 0);
                FUZZ_CHECK(sf_cidr_parse(json_object_get_string(json_object_object_get(net, "netblock")),
                                         &cidr, NULL) == 0);
                FUZZ_CHECK(sf_cidr_contains(&cidr, ip));
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char pre[] = "{\"network\": ", post[] = "}";
        const uint8_t *nul = memchr(data, 0, size);
        size_t speclen = nul ? (size_t)(nul - data) : size;
        size_t len = sizeof(pre) - 1 + speclen + sizeof(post) - 1;
        char *text = malloc(len + 1), *nettext = NULL;
        json_object *body = NULL, *net = NULL, *list;

        if (!text)
                abort();
        memcpy(text, pre, sizeof(pre) - 1);
        memcpy(text + sizeof(pre) - 1, data, speclen);
        memcpy(text + sizeof(pre) - 1 + speclen, post, sizeof(post));
        nettext = nul ? fuzz_str(nul + 1, size - speclen - 1) : NULL;
        net = json_tokener_parse(nettext ? nettext : default_net);
        /* Stored network docs always carry their uuid. */
        if (!json_object_is_type(net, json_type_object)) {
                json_object_put(net);
                net = json_tokener_parse(default_net);
        }
        if (!json_object_is_type(json_object_object_get(net, "uuid"), json_type_string))
                json_object_object_add(net, "uuid", json_object_new_string("2b4a3c4e-0000-4000-8000-000000000002"));
        if (sf_http_body_parse(text, len, false, &body) < 0 ||
            !json_object_object_get_ex(body, "network", &list) || !json_object_is_type(list, json_type_array))
                goto cleanup;
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                json_object *spec = json_object_array_get_idx(list, i);
                sf_http_resp_t resp = {0};
                sf_api_nic_t nic = {0};
                int r;

                if (!json_object_is_type(spec, json_type_object) ||
                    !json_object_is_type(json_object_object_get(spec, "network_uuid"), json_type_string))
                        continue;
                r = sf_api_nic_check(spec, net, "system", &resp, &nic);
                if (r == 0) {
                        FUZZ_CHECK(resp.status == 0);
                        check_nic(&nic, net);
                } else {
                        FUZZ_CHECK(resp.status >= 400 && resp.status < 500 && resp.body &&
                                   strncmp(resp.body, "{\"error\": ", 10) == 0);
                }
                free(resp.body);
        }
cleanup:
        json_object_put(body);
        json_object_put(net);
        free(nettext);
        free(text);
        return 0;
}
