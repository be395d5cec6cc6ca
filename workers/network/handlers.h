/* sf-network intent handlers. */
#pragma once
#include "worker.h"

extern const sf_handler_t sf_network_handlers[];
extern const size_t sf_network_nhandlers;
void sf_network_tick(sf_ctx_t *ctx, void *user);
