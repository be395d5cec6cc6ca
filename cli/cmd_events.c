/* sf events ...: (cli.md §1.2). */
#include "cli.h"
#include "out.h"

#include <stdlib.h>
#include <string.h>

static const sf_cmd_t cmds[] = {
        {0},
};

const sf_group_t sf_group_events = {"events", "Live event commands (over GET /events/stream)", cmds};
