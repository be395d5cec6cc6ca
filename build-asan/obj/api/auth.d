build-asan/obj/api/auth.o: api/auth.c api/auth.h lib/util.h
api/auth.h:
lib/util.h:
