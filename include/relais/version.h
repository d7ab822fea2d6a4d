/*
 * The version of the Relais library a program runs with.
 *
 * RELAIS_VERSION_* are the version of the headers a program was compiled against;
 * relais_version() is the version of the library it is linked with at run time. A vendor
 * who links librelais-agent dynamically compares the two to tell an upgrade of the shared
 * library from a rebuild. The numbers follow the project's version (CMakeLists.txt,
 * `project(relais VERSION …)`): the SONAME changes with the major number only.
 */
#ifndef RELAIS_VERSION_H
#define RELAIS_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

#define RELAIS_VERSION_MAJOR 0
#define RELAIS_VERSION_MINOR 1
#define RELAIS_VERSION_PATCH 0

/* MAJOR * 10000 + MINOR * 100 + PATCH, for comparisons in #if. */
#define RELAIS_VERSION_NUMBER                                                                      \
    (RELAIS_VERSION_MAJOR * 10000 + RELAIS_VERSION_MINOR * 100 + RELAIS_VERSION_PATCH)

/* "MAJOR.MINOR.PATCH" of the library linked in; a static string, never NULL. */
const char *relais_version(void);

/* RELAIS_VERSION_NUMBER of the library linked in. */
int relais_version_number(void);

#ifdef __cplusplus
}
#endif

#endif /* RELAIS_VERSION_H */
