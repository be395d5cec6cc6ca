build-asan/obj/workers/network/main.o: workers/network/main.c \
 workers/network/handlers.h lib/worker.h lib/ctx.h bus/bus.h lib/config.h \
 lib/store.h lib/intent.h build-asan/gen/sf.pb-c.h lib/util.h
workers/network/handlers.h:
lib/worker.h:
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
lib/intent.h:
build-asan/gen/sf.pb-c.h:
lib/util.h:
