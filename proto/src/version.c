/*
 * relais_version(): the library's version, as include/relais/version.h promises.
 *
 * The string is built from the header's numbers, and CMakeLists.txt checks at configure
 * time that those numbers are the project's version, so the header, the library, the
 * package and `--version` cannot disagree.
 */
#include "relais/version.h"

#define RELAIS_STR_(x) #x
#define RELAIS_STR(x) RELAIS_STR_(x)

const char *relais_version(void)
{
    return RELAIS_STR(RELAIS_VERSION_MAJOR) "." RELAIS_STR(RELAIS_VERSION_MINOR) "." RELAIS_STR(
        RELAIS_VERSION_PATCH);
}

int relais_version_number(void)
{
    return RELAIS_VERSION_NUMBER;
}
