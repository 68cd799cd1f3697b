#ifndef FERRY_PRODUCER_H
#define FERRY_PRODUCER_H

/* Subcommands; each returns a process exit code (FERRY_EXIT_*). */
int producer_publish_main(int argc, char **argv);

#endif
