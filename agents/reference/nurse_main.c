/*
 * relais-nurse: a reference nurse (infirmier·ère libéral·e). Home visits by default: care
 * tasks after a discharge and appointment requests are answered from a calendar of visits.
 */
#include "cli.h"

int main(int argc, char **argv)
{
    return ref__cli_provider_main(argc, argv, "nurse", true, false);
}
