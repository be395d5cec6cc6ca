build-asan/obj/workers/compute/configdrive.o: \
 workers/compute/configdrive.c workers/compute/configdrive.h lib/exec.h \
 lib/log.h lib/util.h
workers/compute/configdrive.h:
lib/exec.h:
lib/log.h:
lib/util.h:
