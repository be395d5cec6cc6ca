/* The download-destination policy (lib/netpolicy.c): the input is three lines, an allow
 * list (SF_DOWNLOAD_ALLOW), a URL, and a floating range (SF_FLOATING_NETWORK). Every
 * allow entry is parsed alone too; the policy is built as sf-blob and sf-api build it, then
 * judges the URL. Parsed rules must be in range; a denial must say why. */
#include "../fuzz.h"

#include <errno.h>
#include <sys/socket.h>

#include "config.h"
#include "netpolicy.h"

static void check_rule(const sf_netpolicy_rule_t *rule) {
        FUZZ_CHECK(rule->family == AF_INET || rule->family == AF_INET6);
        FUZZ_CHECK(rule->prefix >= 0 && rule->prefix <= (rule->family == AF_INET ? 32 : 128));
        FUZZ_CHECK(rule->port >= 0 && rule->port <= 65535);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        size_t pos = 0;
        char *allow = fuzz_part(data, size, &pos, '\n');
        char *url = fuzz_part(data, size, &pos, '\n');
        char *floating = fuzz_part(data, size, &pos, '\n');
        sf_config_t cfg = {.redis_host = "127.0.0.1", .redis_port = 6379, .nats_url = "nats://127.0.0.1:4222",
                           .api_port = 13000};
        sf_netpolicy_t *p = calloc(1, sizeof(*p));
        char why[256], *copy, *save = NULL;
        int r;

        if (!p || !allow)
                abort();
        copy = strdup(allow);
        if (!copy)
                abort();
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                sf_netpolicy_rule_t rule;

                if (sf_netpolicy_rule_parse(tok, &rule) == 0)
                        check_rule(&rule);
        }
        free(copy);
        snprintf(cfg.download_allow, sizeof(cfg.download_allow), "%s", allow);
        snprintf(cfg.floating_network, sizeof(cfg.floating_network), "%s", floating ? floating : "");
        r = sf_netpolicy_init(p, &cfg);
        if (r == 0) {
                for (size_t i = 0; i < p->nallow; i++)
                        check_rule(&p->allow[i]);
                for (size_t i = 0; i < p->ndeny; i++)
                        check_rule(&p->deny[i]);
                if (url) {
                        why[0] = 0;
                        r = sf_netpolicy_check_url_literal(p, url, why, sizeof(why));
                        FUZZ_CHECK(r == 0 || r == -EINVAL || (r == -EACCES && why[0]));
                }
        } else {
                FUZZ_CHECK(r == -EINVAL);
        }
        if (url) {
                r = sf_netpolicy_check_base_url(&cfg, url, why, sizeof(why));
                FUZZ_CHECK(r == 0 || ((r == -EINVAL || r == -EACCES) && why[0]));
        }
        free(p);
        free(allow);
        free(url);
        free(floating);
        return 0;
}
