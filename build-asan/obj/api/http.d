build-asan/obj/api/http.o: api/http.c api/http.h lib/json.h lib/log.h \
 lib/util.h
api/http.h:
lib/json.h:
lib/log.h:
lib/util.h:
