/* Live views of sf (cli/) over GET /events/stream (docs/events-stream.md):
 * `sf instance watch REF` and `sf events follow`, and the Ctrl-C handling they and the
 * waits share. */
#pragma once
#include "cli.h"

#include <signal.h>

/* Set by the SIGINT handler that sf_live_catch_sigint installs. */
extern volatile sig_atomic_t sf_live_interrupted;
/* Ctrl-C sets sf_live_interrupted instead of ending sf (the caller restores its screen
 * first); the previous action goes to *old. */
void sf_live_catch_sigint(struct sigaction *old);
/* Ends sf as an interrupted program: SIGINT's default action, so a calling shell sees
 * status 130 and stops too (130 if the signal is blocked). Output is flushed first. */
void sf_live_exit_interrupted(void) __attribute__((noreturn));

/* sf instance watch INSTANCE_REF: a status line (state, power state, last event, elapsed)
 * redrawn in place on a terminal, one line per change otherwise; 0 once the instance is
 * created, deleted or in an error state; ends as interrupted (130) on Ctrl-C. */
int sf_live_instance_watch(sf_cli_t *cli, sf_args_t *a);
/* sf events follow [--type T] [REF] (cmd_events.c). */
int sf_live_events_follow(sf_cli_t *cli, sf_args_t *a);
