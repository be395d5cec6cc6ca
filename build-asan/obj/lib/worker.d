build-asan/obj/lib/worker.o: lib/worker.c lib/worker.h lib/ctx.h \
 bus/bus.h lib/config.h lib/store.h lib/intent.h build-asan/gen/sf.pb-c.h \
 lib/util.h lib/log.h
lib/worker.h:
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
lib/intent.h:
build-asan/gen/sf.pb-c.h:
lib/util.h:
lib/log.h:
