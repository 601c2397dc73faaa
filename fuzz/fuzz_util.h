/* fuzz_util.h — shared by the libFuzzer harnesses: parsers that take a path get the input through
 * an in-memory file (memfd), rewritten for every input. */
#ifndef PI0_FUZZ_UTIL_H
#define PI0_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Returns a path naming a file that holds exactly data[0..size). */
static const char *fuzz_file(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("pi0-fuzz", 0);
        if (fd < 0) { perror("memfd_create"); abort(); }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) { perror("fuzz_file"); abort(); }
    return path;
}

#endif
