/*
 * relais-physiotherapist: a reference physiotherapist (masseur-kinésithérapeute) answering
 * appointment requests from a calendar of office sessions.
 */
#include "cli.h"

int main(int argc, char **argv)
{
    return ref__cli_provider_main(argc, argv, "physiotherapist", false, false);
}
