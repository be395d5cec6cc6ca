/* sf-ctl: operator commands that talk to Redis directly (no API needed). */
#include "../api/api.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int usage(void) {
        fprintf(stderr, "usage: sf-ctl bootstrap-system-key KEYNAME KEY\n");
        return 2;
}

int main(int argc, char **argv) {
        sf_ctx_t ctx;
        int r;

        sf_log_init("sf-ctl");
        if (argc < 2)
                return usage();
        if (strcmp(argv[1], "bootstrap-system-key") == 0) {
                if (argc != 4 || !*argv[2] || !*argv[3])
                        return usage();
                r = sf_ctx_open(&ctx, false, 10);
                if (r < 0)
                        return 1;
                r = sf_api_ns_ensure(&ctx, "system");
                if (r == 0)
                        r = sf_api_ns_set_key(&ctx, "system", argv[2], argv[3]);
                sf_ctx_close(&ctx);
                if (r < 0) {
                        fprintf(stderr, "sf-ctl: %s\n", strerror(-r));
                        return 1;
                }
                printf("system namespace key '%s' set\n", argv[2]);
                return 0;
        }
        return usage();
}
