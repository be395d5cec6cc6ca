build-asan/obj/api/namespaces.o: api/namespaces.c api/api.h api/auth.h \
 lib/ctx.h bus/bus.h lib/config.h lib/store.h api/http.h lib/event.h \
 lib/log.h lib/object.h lib/util.h
api/api.h:
api/auth.h:
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
api/http.h:
lib/event.h:
lib/log.h:
lib/object.h:
lib/util.h:
