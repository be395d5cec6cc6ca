build-asan/obj/api/routes.o: api/routes.c api/api.h api/auth.h lib/ctx.h \
 bus/bus.h lib/config.h lib/store.h api/http.h lib/util.h
api/api.h:
api/auth.h:
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
api/http.h:
lib/util.h:
