build-asan/obj/lib/event.o: lib/event.c lib/event.h lib/ctx.h bus/bus.h \
 lib/config.h lib/store.h lib/log.h build-asan/gen/sf.pb-c.h lib/util.h
lib/event.h:
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
lib/log.h:
build-asan/gen/sf.pb-c.h:
lib/util.h:
