build-asan/obj/lib/exec.o: lib/exec.c lib/exec.h lib/log.h lib/util.h
lib/exec.h:
lib/log.h:
lib/util.h:
