build-asan/obj/lib/tmpl.o: lib/tmpl.c lib/tmpl.h lib/log.h lib/util.h
lib/tmpl.h:
lib/log.h:
lib/util.h:
