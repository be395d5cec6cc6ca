/* sf-network: this node's network worker. */
#include "handlers.h"

int main(void) {
        sf_worker_t w = {.name = "network", .handlers = sf_network_handlers,
                         .nhandlers = sf_network_nhandlers, .tick = sf_network_tick, .tick_ms = 5000};

        return sf_worker_main("sf-network", &w, NULL, NULL);
}
