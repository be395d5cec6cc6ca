build-asan/obj/lib/object.o: lib/object.c lib/object.h lib/ctx.h \
 bus/bus.h lib/config.h lib/store.h lib/event.h lib/ipam.h lib/log.h \
 lib/state.h lib/util.h
lib/object.h:
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
lib/event.h:
lib/ipam.h:
lib/log.h:
lib/state.h:
lib/util.h:
