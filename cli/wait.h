/* Waiting for an object to settle after a create or delete (cli.md §1.1, §3.2): until the
 * deadline of the --async strategy (continue: none, pause: 60 s, block: 3600 s). The GET
 * of the object is the source of truth, made every second as upstream does; between, the
 * wait follows GET /events/stream for the object's uuid and GETs again the moment an event
 * says its state changed, so a wait ends as soon as the state does rather than up to a
 * second later. Without a stream (refused, unavailable) it is plain polling. On a terminal
 * stderr a progress line shows the state, elapsed time, a bar and an ETA (progress.h). */
#pragma once
#include "cli.h"

/* Seconds the --async strategy allows for a wait. */
int sf_wait_deadline_s(const sf_cli_t *cli);

/* GETs `path` until its `state` is not one of `pending` (NULL-terminated list, in the
 * order the object goes through them: the bar counts states passed), or, with `until`
 * set, until state equals `until`. *ret (may be NULL) is the last object seen.
 * 0 when settled, -ETIMEDOUT at the deadline (the last object is still returned),
 * -1 on a request error (printed). `label` names the object for progress output.
 * Ctrl-C during a wait on a terminal clears the progress line, then ends sf as SIGINT does. */
int sf_wait_state(sf_cli_t *cli, const char *label, const char *path, const char *const *pending,
                  const char *until, json_object **ret);
