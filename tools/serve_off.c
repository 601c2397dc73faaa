/* serve_off.c — `pi0 serve` in a build without libwebsockets / msgpack-c: says so. */
#include <stdio.h>

#include "cli.h"

int cmd_serve(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (cli_is_help(argv[i])) {
            cli_help("serve");
            printf("\nThis pi0 was built without serve (cmake found no libwebsockets / msgpack-c, or PI0_SERVE=OFF).\n");
            return 0;
        }
    return cli_error(2, "'pi0 serve' is not built in this binary: it needs libwebsockets and msgpack-c "
                     "(Debian: libwebsockets-dev libmsgpack-dev); install them and re-run cmake with -DPI0_SERVE=ON");
}
