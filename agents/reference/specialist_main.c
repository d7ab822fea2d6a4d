/*
 * relais-specialist: a reference specialist (cardiologist, pulmonologist…) answering
 * appointment requests for its specialty; requests for another specialty are declined as
 * out of scope.
 */
#include "cli.h"

int main(int argc, char **argv)
{
    return ref__cli_provider_main(argc, argv, "specialist", false, true);
}
