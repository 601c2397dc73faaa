/* orbax_read DIR NAME OUT — reads one zarr array of the OCDBT database in DIR with pi0.c's
 * reader and writes its bytes (C order, little-endian) to OUT, its dtype and shape to stdout;
 * the error message and exit 2 when it cannot. For test_orbax.sh, which compares the bytes with
 * what tensorstore wrote. */
#include <stdio.h>
#include <stdlib.h>

#include "../src/io/orbax.h"

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: orbax_read DIR NAME OUT\n"); return 1; }
    pi0_err e;
    orbax_ckpt *o;
    orbax_array a;
    if (orbax_open(&o, argv[1], &e) != PI0_OK) { fprintf(stderr, "%s\n", e.msg); return 2; }
    int rc = 2;
    void *buf = NULL;
    if (orbax_array_info(o, argv[2], &a, &e) == PI0_OK && (buf = malloc(a.nbytes ? a.nbytes : 1)) &&
        orbax_array_read(o, argv[2], buf, a.nbytes, &e) == PI0_OK) {
        FILE *f = fopen(argv[3], "wb");
        if (f && fwrite(buf, 1, a.nbytes, f) == a.nbytes && fclose(f) == 0) {
            printf("%s %s [", argv[2], dtype_name(a.dtype));
            for (int i = 0; i < a.ndim; i++) printf("%s%lld", i ? ", " : "", (long long)a.shape[i]);
            printf("] chunks [");
            for (int i = 0; i < a.ndim; i++) printf("%s%lld", i ? ", " : "", (long long)a.chunks[i]);
            printf("]\n");
            rc = 0;
        }
    } else {
        fprintf(stderr, "%s\n", e.msg);
    }
    free(buf);
    orbax_close(o);
    return rc;
}
