build-asan/obj/workers/network/handlers.o: workers/network/handlers.c \
 workers/network/handlers.h lib/worker.h lib/ctx.h bus/bus.h lib/config.h \
 lib/store.h lib/intent.h build-asan/gen/sf.pb-c.h lib/util.h lib/event.h \
 lib/exec.h lib/ipam.h lib/log.h workers/network/netplumb.h lib/object.h
workers/network/handlers.h:
lib/worker.h:
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
lib/intent.h:
build-asan/gen/sf.pb-c.h:
lib/util.h:
lib/event.h:
lib/exec.h:
lib/ipam.h:
lib/log.h:
workers/network/netplumb.h:
lib/object.h:
