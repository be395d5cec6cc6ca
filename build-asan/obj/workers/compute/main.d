build-asan/obj/workers/compute/main.o: workers/compute/main.c \
 workers/compute/handlers.h lib/worker.h lib/ctx.h bus/bus.h lib/config.h \
 lib/store.h lib/intent.h build-asan/gen/sf.pb-c.h lib/util.h lib/log.h \
 workers/compute/virt.h
workers/compute/handlers.h:
lib/worker.h:
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
lib/intent.h:
build-asan/gen/sf.pb-c.h:
lib/util.h:
lib/log.h:
workers/compute/virt.h:
