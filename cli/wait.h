/* Waiting for an object to settle after a create or delete (cli.md §1.1, §3.2): poll its
 * GET every second until the deadline of the --async strategy (continue: none, pause: 60 s,
 * block: 3600 s). */
#pragma once
#include "cli.h"

/* Seconds the --async strategy allows for a wait. */
int sf_wait_deadline_s(const sf_cli_t *cli);

/* GETs `path` until its `state` is not one of `pending` (NULL-terminated list), or, with
 * `until` set, until state equals `until`. *ret (may be NULL) is the last object seen.
 * 0 when settled, -ETIMEDOUT at the deadline (the last object is still returned),
 * -1 on a request error (printed). `label` names the object for progress output. */
int sf_wait_state(sf_cli_t *cli, const char *label, const char *path, const char *const *pending,
                  const char *until, json_object **ret);
