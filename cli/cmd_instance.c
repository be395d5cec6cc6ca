/* sf instance ...: (cli.md §1.2). */
#include "cli.h"
#include "live.h"
#include "out.h"

#include <stdlib.h>
#include <string.h>

static const sf_cmd_t cmds[] = {
        SF_CMD("watch", "INSTANCE_REF", "Follow an instance live until created, deleted or error", 1, sf_live_instance_watch),
        {0},
};

const sf_group_t sf_group_instance = {"instance", "Instance commands", cmds};
